import pytest

W = pytest.importorskip("ipywidgets")
go = pytest.importorskip("plotly.graph_objects")

from snnkit.widgets import interactive_figure


def test_panel_redraws_from_the_plain_callback():
    calls = []

    def cb(a=1.0, n=2):
        calls.append((a, n))
        return go.Figure(go.Scatter(x=list(range(n)), y=[a] * n), layout=dict(title=f"a={a}"))

    box = interactive_figure(cb, a=W.FloatSlider(1.0, min=0, max=2), n=W.IntSlider(2, min=1, max=5))
    assert list(box.figure.data[0].y) == [1.0, 1.0]
    slider_a, slider_n = box.children[0].children
    slider_n.value = 4
    slider_a.value = 1.5
    assert list(box.figure.data[0].y) == [1.5] * 4 and box.figure.layout.title.text == "a=1.5"
    assert calls == [(1.0, 2), (1.0, 4), (1.5, 4)]


def test_s3gd_delta_panel_redraws():
    import numpy as np
    from snnkit import s3gd
    from snnkit.widgets.s3gd import DeltaExplorer
    r = np.random.default_rng(0)
    x = (r.random((4, 15, 6)) < 0.35).astype(np.float64)
    y = r.integers(0, 3, 4)
    net = s3gd.Network(6, 8, 3, 0.85, delta=0.2, seed=1, dtype=np.float64, weight_scale=5.0)
    box = DeltaExplorer(net, x, y).panel(value=0.2)
    slider, label, hist, maps = box.children
    before = label.value
    slider.value = 0.45
    assert label.value != before and "delta = 0.45" in label.value
    assert len(hist.data) > 0 and len(maps.data) > 0
