"""The tour's standalone HTML pages work offline: plotly.js is inlined, and every script that is
still fetched from the network is optional (non-blocking, and the page says what is missing)."""
import re
import time

import pytest

nbformat = pytest.importorskip("nbformat")       # GPU machines run the suite without Jupyter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from snnkit.tour import export_html, offline_html

SCRIPT_SRC = re.compile(r"""<script\b[^>]*\bsrc=["']?([^"' >]+)[^>]*>""", re.I)
OPTIONAL = {"mathjax": "async", "require": "defer"}   # what may stay remote, and how it must load


def _remote_scripts(page):
    return [(m.group(0), m.group(1)) for m in SCRIPT_SRC.finditer(page)
            if re.match(r"(https?:)?//", m.group(1), re.I)]


def assert_works_offline(page, widgets=False):
    for tag, src in _remote_scripts(page):
        kind = next((k for k in OPTIONAL if k in src.lower()), None)
        assert kind is not None, f"the page needs a script from the network: {tag}"
        assert re.search(rf"\b{OPTIONAL[kind]}\b", tag), f"an optional remote script that blocks: {tag}"
        if kind == "require":
            assert widgets, f"require.js is loaded though nothing on the page uses it: {tag}"
    mathjax = [t for t, s in _remote_scripts(page) if "mathjax" in s.lower()]
    assert len(mathjax) <= 1, f"more than one MathJax: {mathjax}"
    if mathjax:
        assert "onerror=" in mathjax[0] and "snnkit-mathjax-note" in page   # says why equations are TeX
    assert not any("plot.ly" in s or "plotly" in s for _, s in _remote_scripts(page))   # plotly.js is inlined


def _notebook(widgets=False):
    """An executed notebook as the tour sees it: equations, plotly.js inlined once, one figure."""
    pio = pytest.importorskip("plotly.io")
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
    init = f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script><script>{get_plotlyjs()}</script>"
    fig = pio.renderers["notebook"].to_mimebundle(go.Figure(go.Scatter(y=[1, 3, 2])).to_dict())
    nb = new_notebook(cells=[
        new_markdown_cell("# A page\nThe membrane: $V(t) = \\sum_i w_i \\epsilon(t - t_i)$"),
        new_code_cell("fig.show()", execution_count=1, outputs=[
            new_output("display_data", data={"text/html": init}),
            new_output("display_data", data={"text/html": fig["text/html"]})]),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if widgets:
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "state": {}, "version_major": 2, "version_minor": 0}}
    return nb


@pytest.mark.parametrize("widgets", [False, True])
def test_exported_page_works_offline(tmp_path, widgets):
    ipynb = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(widgets), str(ipynb))
    page = export_html(ipynb, tmp_path / "nb.html").read_text()
    assert_works_offline(page, widgets)
    assert "plotly.js v" in page and "Plotly.newPlot" in page          # plotly stays inlined
    assert "\\sum_i w_i" in page                                       # TeX source, readable without MathJax
    assert len([1 for _, s in _remote_scripts(page) if "mathjax" in s.lower()]) == 1
    assert any("require" in s for _, s in _remote_scripts(page)) == widgets


def test_the_check_catches_blocking_cdn_scripts():
    raw = ('<html><head><script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js">'
           '</script><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js"> </script>'
           '</head><body><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.min.js">'
           '</script></body></html>')
    with pytest.raises(AssertionError):
        assert_works_offline(raw)
    assert_works_offline(offline_html(raw))
    with pytest.raises(AssertionError, match="needs a script from the network"):
        assert_works_offline(offline_html(raw + '<script src="https://cdn.example.org/x.js"></script>'))


@pytest.mark.slow
def test_tour_page_of_a_real_notebook_works_offline(tmp_path):
    from snnkit.tour import run_tour
    runs = run_tour(tmp_path, only=["00_"])
    assert runs and runs[0].ok, runs
    page = (tmp_path / runs[0].html).read_text()
    nb = nbformat.read(str(tmp_path / runs[0].name), as_version=4)
    assert_works_offline(page, widgets="widgets" in nb.metadata)
    assert "plotly.js v" in page


def test_a_stuck_notebook_fails_the_tour_entry_instead_of_hanging(tmp_path):
    """A notebook whose cell runs past the tour's timeout is marked failed with the reason, and the
    tour goes on to write its index (a dead or stuck kernel must not hang ``make tour``)."""
    from snnkit.tour import run_tour
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# Stuck"), new_code_cell("import time\ntime.sleep(600)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "01_stuck.ipynb"))
    t0 = time.perf_counter()
    runs = run_tour(tmp_path / "out", folder=folder, timeout=5)
    assert time.perf_counter() - t0 < 120
    assert len(runs) == 1 and not runs[0].ok and runs[0].error, runs
    assert (tmp_path / "out" / "index.html").exists()
