"""The tour: execute every notebook headless on its CPU defaults and render an offline course site.

``snnkit tour`` (and ``make tour``) runs each ``notebooks/NN_*.ipynb`` with papermill into
``build/tour/``, exports each executed notebook as a page and writes ``build/tour/index.html``
with each notebook's learning goals, run time and status. The site works from the file system
with no network and no kernel:

- plotly.js and MathJax (2.7, from the ``jupyter-server-mathjax`` package) are written once next
  to the pages (``write_assets``) and referenced relatively: no page fetches anything remote
  (``notebook_run.remote_references`` finds what would be);
- every panel of :func:`snnkit.widgets.interactive_figure` shows its precomputed static view (HTML
  controls over plotly frames): the exporter drops the widget views and the widget state, which
  need a kernel (``notebook_run.prepare_for_page``);
- plotly figures are redrawn from their JSON by a few lines using the page's one plotly.js;
  stderr output (warnings) is left out of the pages and reported by the tour; solution cells
  (tag ``solution``) are collapsed in a ``<details>``.

Executing and exporting are :mod:`snnkit.notebook_run`'s (:func:`execute_notebook`,
:func:`export_page`, :func:`write_assets`), the one executor and exporter of the project; this
module is the course site: which notebooks, their titles and goals, the index. The test suite
executes the notebooks through the same :func:`execute_notebook` (and its session fixture through
:func:`run_tour` with ``sweep=True``), so the tour and the tests run the same thing.
"""
from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .notebook_run import execute_notebook, export_page, write_assets

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


@dataclass
class NotebookRun:
    name: str
    title: str
    seconds: float
    ok: bool
    error: str = ""
    html: str = ""
    goals: str = ""


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def notebook_title(path: Path) -> str:
    nb = json.loads(Path(path).read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(path).stem


def notebook_goals(path: Path) -> str:
    """The learning goals (the first cell without its title) as HTML, for the index."""
    import nbformat
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    nb = nbformat.read(str(path), as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return ""
    lines = first.source.splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    return markdown2html_mistune("\n".join(lines).strip())


TOUR_TIMEOUT_S = 1200    # per notebook: the CPU defaults take 15-100 s; a stuck or dead kernel must not hang


def run_tour(out_dir: Path = ROOT / "build" / "tour", folder: Path = NOTEBOOKS,
             only: list[str] | None = None, timeout: float | None = TOUR_TIMEOUT_S,
             sweep: bool = False) -> list[NotebookRun]:
    """Execute the notebooks, export them and write the index. ``timeout`` (seconds, per cell and,
    with a minute's grace, per notebook): a notebook that exceeds it is marked failed with the
    reason and the tour goes on; None waits forever. ``sweep``: every panel also runs every value
    of its controls' ranges (``SNNKIT_PANELS=sweep``; the tests' tour), not only the page's frames."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_assets(out_dir)
    runs = []
    t_all = time.perf_counter()
    for p in notebook_paths(folder):
        if only and not any(o in p.name for o in only):
            continue
        title = notebook_title(p)
        print(f"[tour] {p.name}: running ...", flush=True)
        executed = out_dir / p.name
        try:
            sec = execute_notebook(p, executed, timeout=timeout, strict_claims=True,
                                   panels="sweep" if sweep else "static")
            ok, err = True, ""
        except Exception as e:          # keep going: the index shows which notebook failed and why
            sec, ok, err = float("nan"), False, f"{type(e).__name__}: {e}"
        page, note = "", ""
        if executed.exists():
            html_path = out_dir / (p.stem + ".html")
            body, rep = export_page(executed)
            html_path.write_text(body, encoding="utf-8")
            page = html_path.name
            mb = len(body.encode()) / 1e6
            note = f", page {mb:.2f} MB"
            if rep["stderr"]:
                note += f", stderr output of cells {sorted(set(rep['stderr']))} left out of the page"
            if rep["widgets_without_static_view"]:
                note += f", widgets without a static view in cells {rep['widgets_without_static_view']}"
        runs.append(NotebookRun(p.name, title, sec, ok, err, page, notebook_goals(p)))
        print(f"[tour] {p.name}: {'ok' if ok else 'FAILED'} ({sec:.1f} s{note})", flush=True)
    index = write_index(runs, out_dir / "index.html")
    total = time.perf_counter() - t_all
    print("[tour] run times: " + ", ".join(f"{r.name.split('_')[0]} {r.seconds:.0f} s" for r in runs)
          + f"; total {total:.0f} s", flush=True)
    print(f"[tour] the site: {index.resolve()} (open it in a browser; it works offline)", flush=True)
    return runs


def write_index(runs: list[NotebookRun], path: Path) -> Path:
    from . import backend
    rows = []
    for r in runs:
        link = f'<a href="{html.escape(r.html)}">{html.escape(r.title)}</a>' if r.html else html.escape(r.title)
        status = "ok" if r.ok else f'<span class="fail">failed</span><pre>{html.escape(r.error[:2000])}</pre>'
        goals = f'<div class="goals">{r.goals}</div>' if r.goals else ""
        rows.append(f'<tr><td class="nb">{html.escape(r.name)}</td><td>{link}{goals}</td>'
                    f'<td class="time">{r.seconds:.1f} s</td><td>{status}</td></tr>')
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>snnkit tour</title>
<style>body{{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;line-height:1.5;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.5em;text-align:left;vertical-align:top}}
td.nb,td.time{{white-space:nowrap;font-size:.9em;color:#444}}.goals{{font-size:.9em;color:#333}}.goals p{{margin:.3em 0}}
.goals ul{{margin:.2em 0;padding-left:1.3em}}
.fail{{color:#b00;font-weight:bold}}pre{{white-space:pre-wrap;font-size:.8em}}</style></head>
<body><h1>snnkit — the tour</h1>
<p>Every notebook of the teaching sequence, executed headless on its CPU defaults
(backend: {html.escape(backend.name())}; {time.strftime('%Y-%m-%d %H:%M')}).
The pages work offline and need no kernel: equations are typeset by a local MathJax, figures are
interactive, and each panel's sliders move through precomputed frames. For the live widgets, open
the notebooks in JupyterLab (<code>make lab</code>).</p>
<table><tr><th>file</th><th>notebook and what you will learn</th><th>run time</th><th>status</th></tr>
{''.join(rows)}
</table></body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
