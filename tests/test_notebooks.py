"""Every notebook runs headless on its CPU defaults (papermill, as `make tour` does) within 180 s,
every panel works for every value of its controls, and notebooks are stored the way the
repository keeps them.

The slow tests share one run of the real tour (the session fixture ``tour_build`` in conftest.py):
the notebooks are executed once, with every panel of :func:`snnkit.widgets.interactive_figure`
sweeping each control's full range at its step through its callback (``SNNKIT_PANELS=sweep``)."""
import json

import pytest

from snnkit.tour import notebook_paths, write_index, NotebookRun

NOTEBOOKS = notebook_paths()
LIMIT_S = 180
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


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


def _panels(executed):
    """(cell index, panel record or None) of every widget output of an executed notebook."""
    nb = json.loads(executed.read_text())
    out = []
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []):
            if WIDGET_VIEW in o.get("data", {}):
                out.append((i, o.get("metadata", {}).get("snnkit/panel")))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless_in_time(path, tour_build):
    """The tour's run of the notebook, less the time its panels spent sweeping values that the
    page does not keep (`make tour` does not sweep)."""
    out, runs = tour_build
    run = runs[path.name]
    assert run.ok, run.error
    sweep = sum((rec or {}).get("sweep_seconds", 0.0) for _, rec in _panels(out / path.name))
    seconds = run.seconds - sweep
    print(f"{path.name}: {seconds:.1f} s (+ {sweep:.1f} s of panel sweeps)")
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s on CPU defaults (limit {LIMIT_S} s)"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_panel_works_for_every_value_in_range(path, tour_build):
    """Each widget of the notebook is a panel of interactive_figure (so it has a static view in the
    page), and each of its controls went through the callback at every value of its range, with
    the others at their defaults, without an exception (a raising value fails the notebook run
    itself under strict mode; the record says so otherwise)."""
    out, runs = tour_build
    assert runs[path.name].ok, runs[path.name].error
    panels = _panels(out / path.name)
    not_panels = [i for i, rec in panels if rec is None]
    assert not not_panels, (f"cells {not_panels} of {path.name} show widgets that are not built with "
                            "snnkit.widgets.interactive_figure: they have no static view in the tour and their "
                            "values are not swept; build them with interactive_figure(callback, **controls)")
    for i, rec in panels:
        assert rec["mode"] == "sweep" and not rec["errors"], (i, rec)
        for name, c in rec["controls"].items():
            assert c["checked"] == c["values"] >= 1, f"cell {i}: control {name} swept {c['checked']} of {c['values']} values"


def test_tour_index_links_pages(tmp_path):
    runs = [NotebookRun("00_welcome.ipynb", "Welcome", 3.2, True, "", "00_welcome.html",
                        "<ul><li>what you will learn</li></ul>"),
            NotebookRun("01_x.ipynb", "X <1>", float("nan"), False, "ValueError: boom", "")]
    page = write_index(runs, tmp_path / "index.html").read_text()
    assert 'href="00_welcome.html"' in page and "X &lt;1&gt;" in page and "ValueError: boom" in page
    assert "<li>what you will learn</li>" in page and "3.2 s" in page
