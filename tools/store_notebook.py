"""Execute a notebook on its CPU defaults and store it the way the repository keeps notebooks:
without outputs, except the cells marked ``# NBVAL_CHECK_OUTPUT`` (their small deterministic
outputs are kept so nbval --nbval-lax can compare them).

    python tools/store_notebook.py notebooks/02_spike_timing.ipynb [more.ipynb ...]

Prints each notebook's execution time; fails if a notebook raises. The notebook runs through
the project's one executor, ``snnkit.notebook_run.execute_notebook`` (papermill in a child process,
as the tour and the tests run it).
"""
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))    # this checkout's snnkit
from snnkit.notebook_run import execute_notebook  # noqa: E402

MARK = "NBVAL_CHECK_OUTPUT"


def store(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise SystemExit(f"{path}: no cell tagged 'parameters'")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / path.name
        # papermill, never the plain fallback: the kept outputs are a Jupyter kernel's, which nbval compares
        dt = execute_notebook(path, out, executor="papermill")
        ex = nbformat.read(out, as_version=4)
    # papermill may insert an 'injected-parameters' cell only when -p is given; match by id/order.
    ex_cells = [c for c in ex.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for c, e in zip(nb.cells, ex_cells):
        if c.cell_type != "code":
            continue
        c.execution_count = None
        c.metadata.pop("execution", None)
        c.metadata.pop("papermill", None)
        if MARK in c.source:
            c.execution_count = e.execution_count      # nbval skips 'unrun' cells that have outputs
            c.outputs = [o for o in e.outputs if o.get("output_type") in ("stream", "execute_result")
                         and not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            for o in c.outputs:
                if o.get("output_type") == "execute_result":
                    o["execution_count"] = e.execution_count
                    o["data"] = {k: v for k, v in o["data"].items() if k == "text/plain"}
        else:
            c.outputs = []
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)
    return dt


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: executed in {store(Path(p)):.1f} s, stored without outputs (except {MARK} cells)")
