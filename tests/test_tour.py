"""The tour's pages: offline (nothing fetched from the network: plotly.js and MathJax next to the
pages), light (no widget state, no inlined plotly.js), kernel-free panels (precomputed static
views), no stderr noise, solutions collapsed; and a stuck notebook fails its entry."""
import json
import re
import time

import pytest

nbformat = pytest.importorskip("nbformat")       # GPU machines run the suite without Jupyter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from snnkit.notebook_run import export_page, remote_references, write_assets  # noqa: E402

PAGE_LIMIT = 3_000_000


def assert_light_offline_page(page, where=""):
    assert not remote_references(page), f"{where}: the page fetches from the network: {remote_references(page)[:5]}"
    assert re.search(r'<script[^>]*src="plotly.min.js"', page) and "mathjax/MathJax.js" in page, where
    assert "plotly.js v" not in page, f"{where}: plotly.js inlined in the page"
    assert "application/vnd.jupyter.widget-state+json" not in page and "widget-view+json" not in page, where
    assert len(page.encode()) <= PAGE_LIMIT, f"{where}: {len(page.encode()) / 1e6:.1f} MB > 3 MB"


def _executed_notebook():
    """An executed notebook as papermill leaves it: plotly.js inlined by plotly's notebook renderer,
    a figure, a widget panel with its static view, a plain widget, a stderr warning, a solution."""
    import ipywidgets as W
    import plotly.graph_objects as go
    import plotly.io as pio
    from snnkit.widgets import interactive_figure, static_panel
    init = pio.renderers["notebook"]
    from plotly.offline import get_plotlyjs
    init_html = f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script><script>{get_plotlyjs()}</script>"
    fig = go.Figure(go.Scatter(y=[1, 3, 2]))
    bundle = init.to_mimebundle(fig.to_dict())
    cb = lambda a=1: go.Figure(go.Scatter(y=[a, 2 * a]))      # noqa: E731
    html, rec = static_panel(cb, {"a": W.IntSlider(1, 0, 4)})
    view = {"model_id": "x", "version_major": 2, "version_minor": 0}
    nb = new_notebook(cells=[
        new_markdown_cell("# A page\nThe membrane: $V(t) = \\sum_i w_i \\epsilon(t - t_i)$"),
        new_code_cell("fig.show()", execution_count=1, outputs=[
            new_output("display_data", data={"text/html": init_html}),
            new_output("display_data", data={"text/html": bundle["text/html"], "application/vnd.plotly.v1+json": fig.to_plotly_json()})]),
        new_code_cell("panel", execution_count=2, outputs=[
            new_output("display_data", data={"text/plain": "Panel(...)", "text/html": html,
                                             "application/vnd.jupyter.widget-view+json": view},
                       metadata={"snnkit/panel": rec})]),
        new_code_cell("W.Button()", execution_count=3, outputs=[
            new_output("display_data", data={"text/plain": "Button()", "application/vnd.jupyter.widget-view+json": view}),
            new_output("stream", name="stderr", text="UserWarning: noise\n")]),
        new_code_cell("answer = 42", metadata={"jupyter": {"source_hidden": True}, "tags": ["solution"]}),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {"big": "x" * 100_000}},
                                                                          "version_major": 2, "version_minor": 0}}
    assert interactive_figure                              # the framework the panel output comes from
    return nb


def test_exported_page_is_light_offline_and_kernel_free(tmp_path):
    ipynb = tmp_path / "nb.ipynb"
    nbformat.write(_executed_notebook(), str(ipynb))
    page, report = export_page(ipynb)
    assert_light_offline_page(page, "nb")
    assert len(page) < 400_000                                            # 4.6 MB of plotly.js gone
    assert "\\sum_i w_i" in page                                          # TeX for the local MathJax
    assert page.count("Plotly.newPlot") == 1 and 'class="snnkit-panel"' in page
    assert "UserWarning: noise" not in page and report["stderr"] == [3]
    assert report["panels"] == [2] and report["widgets_without_static_view"] == [3]
    assert "snnkit-widget-note" in page                                  # the plain widget says why it is absent
    assert re.search(r'<details class="snnkit-solution"><summary>[^<]*</summary>\s*<div class="jp-Cell-inputWrapper', page)
    assert "answer" in page


def test_remote_references_finds_what_a_page_would_fetch():
    raw = ('<script src="https://cdn.example.org/a.js"></script><link rel="stylesheet" href="//cdn.x/y.css">'
           '<img src="http://x/y.png"><script src="plotly.min.js"></script><a href="https://arxiv.org/abs/2212.09500">paper</a>')
    assert remote_references(raw) == ["https://cdn.example.org/a.js", "//cdn.x/y.css", "http://x/y.png"]


def test_assets_are_written_once_next_to_the_pages(tmp_path):
    a = write_assets(tmp_path)
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000 and (tmp_path / "mathjax" / "MathJax.js").exists()
    m0 = (a["mathjax"] / "MathJax.js").stat().st_mtime_ns
    write_assets(tmp_path)
    assert (a["mathjax"] / "MathJax.js").stat().st_mtime_ns == m0                    # not copied again
    assert not list(tmp_path.glob("*.html"))


def test_panel_static_view_precomputes_each_control_and_compacts_figures(monkeypatch):
    import ipywidgets as W
    import numpy as np
    import plotly.graph_objects as go
    from snnkit.widgets import PANEL_BYTES, control_grid, static_panel
    monkeypatch.setenv("SNNKIT_STRICT_CLAIMS", "0")
    assert control_grid(W.IntSlider(3, 0, 9, step=3))[0] == [0, 3, 6, 9]
    assert control_grid(W.FloatSlider(0.2, min=0.1, max=0.5, step=0.2))[0] == [0.1, 0.2, 0.3, 0.5]   # value and max kept
    assert np.allclose(control_grid(W.FloatLogSlider(1e-3, base=10, min=-4, max=-2, step=1))[0], [1e-4, 1e-3, 1e-2])
    assert control_grid(W.Dropdown(options=[("off", 0.0), ("on", 1.0)]))[1] == ["off", "on"]
    with pytest.raises(TypeError, match="Text control has no grid"):
        control_grid(W.Text("x"))
    calls = []

    def cb(n=2, kind="a"):
        calls.append((n, kind))
        if n == 7:
            raise ValueError("seven")
        rng = np.random.default_rng(n)
        return (go.Figure([go.Histogram(x=rng.normal(size=20_000), name="h"),
                           go.Scatter(x=np.linspace(0, 1, 500), y=rng.random(500))]), f"n={n}")
    ctl = {"n": W.IntSlider(2, 0, 40), "kind": W.Dropdown(options=["a", "b"])}
    html, rec = static_panel(cb, ctl, "sweep")
    assert rec["errors"] == ["cb(n=7) raised ValueError: seven"]            # reported, not hidden
    assert {(n, "a") for n in range(41)} <= set(calls) and (2, "b") in calls     # every value swept
    assert rec["controls"]["n"] == {"values": 41, "checked": 41, "in_page": rec["controls"]["n"]["in_page"],
                                    "first": 0, "last": 40}
    assert len(html) < 1.5 * PANEL_BYTES
    data = json.loads(re.search(r'type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    hist, line = data["default"][0]["data"]
    assert hist["type"] == "bar" and "bdata" in hist["y"]                 # 20,000 samples -> binned bars
    assert line["x0"] == 0 and abs(line["dx"] - 1 / 499) < 1e-9 and "x" not in line
    assert data["default"][1] == {"kind": "text", "text": "n=2"} and data["template"]
    labels = data["controls"][0]["labels"]
    assert labels[0] == "0" and labels[-1] == "40" and labels[data["controls"][0]["default"]] == "2"
    monkeypatch.setenv("SNNKIT_STRICT_CLAIMS", "1")
    with pytest.raises(RuntimeError, match=r"n=7\) raised ValueError: seven"):
        static_panel(cb, ctl, "sweep")


def test_panel_bundle_carries_the_static_view_only_when_asked(monkeypatch):
    import ipywidgets as W
    import plotly.graph_objects as go
    from snnkit.widgets import interactive_figure
    box = interactive_figure(lambda a=1: go.Figure(go.Scatter(y=[a])), a=W.IntSlider(1, 0, 3, description="a long label"))
    assert box.children[0].children[0].style.description_width == "initial"
    monkeypatch.delenv("SNNKIT_PANELS", raising=False)
    assert "text/html" not in box._repr_mimebundle_()
    monkeypatch.setenv("SNNKIT_PANELS", "static")
    data, meta = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and 'class="snnkit-panel"' in data["text/html"]
    assert meta["snnkit/panel"]["controls"]["a"]["values"] == 4


def test_live_panel_shows_text_items_and_errors():
    import ipywidgets as W
    import plotly.graph_objects as go
    from snnkit.widgets import interactive_figure

    def cb(k=0):
        if k == 2:
            raise ValueError("no spike 2")
        return go.Figure(go.Scatter(y=[k])) if k == 0 else "only text"
    box = interactive_figure(cb, k=W.IntSlider(0, 0, 2))
    (fig, fig_box, text), = box.outputs
    slider = box.children[0].children[0]
    slider.value = 1
    assert "only text" in text.value and fig_box.layout.display == "none" and text.layout.display is None
    slider.value = 2
    assert "ValueError: no spike 2" in text.value
    slider.value = 0
    assert box.figure is fig and list(fig.data[0].y) == [0] and fig_box.layout.display is None


@pytest.mark.slow
def test_real_tour_pages_are_light_offline_and_kernel_free(tour_build):
    out, runs = tour_build
    sizes = {}
    for r in runs.values():
        assert r.ok, (r.name, r.error)
        page = (out / r.html).read_text()
        sizes[r.html] = round(len(page.encode()) / 1e6, 2)
        assert_light_offline_page(page, r.html)
        assert "jp-OutputArea-output" in page and 'data-mime-type="application/vnd.jupyter.stderr"' not in page
    print("page sizes (MB):", sizes)
    index = (out / "index.html").read_text()
    assert all(f'href="{r.html}"' in index for r in runs.values()) and index.count('class="goals"') == len(runs)


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
