"""Every notebook runs headless on its CPU defaults (papermill, as `make tour` does) within 180 s,
and is stored the way the repository keeps notebooks."""
import json

import pytest

from snnkit.tour import execute_notebook, notebook_paths, write_index, NotebookRun

NOTEBOOKS = notebook_paths()
LIMIT_S = 180


def test_there_are_notebooks():
    assert any(p.name.startswith("00_") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), "no 'parameters' cell"
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.lstrip().startswith("#"), "start with a title"
    assert "learn" in first.lower(), "the first cell states the learning goals"
    for c in cells:
        if c["cell_type"] == "code" and c.get("outputs"):
            assert "NBVAL_CHECK_OUTPUT" in "".join(c["source"]), "outputs stored outside NBVAL_CHECK_OUTPUT cells"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless_in_time(path, tmp_path):
    seconds = execute_notebook(path, tmp_path / path.name, timeout=LIMIT_S + 60)
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s on CPU defaults (limit {LIMIT_S} s)"


def test_tour_index_links_pages(tmp_path):
    runs = [NotebookRun("00_welcome.ipynb", "Welcome", 3.2, True, "", "00_welcome.html"),
            NotebookRun("01_x.ipynb", "X <1>", float("nan"), False, "ValueError: boom", "")]
    page = write_index(runs, tmp_path / "index.html").read_text()
    assert 'href="00_welcome.html"' in page and "X &lt;1&gt;" in page and "ValueError: boom" in page
