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
    slider = box.children[0].children[0]
    assert slider.description == "delta" and isinstance(slider, W.FloatLogSlider)
    before = box.figure.layout.title.text
    slider.value = 0.45
    assert box.figure.layout.title.text != before and "delta = 0.45" in box.figure.layout.title.text
    types = {t.type for t in box.figure.data}
    assert types == {"bar", "scatter", "heatmap"}       # histogram, cosine against delta, dense / sparse dW


# ---- STBP + tdBN (notebook 06): callbacks headless, the panels around them, the figure builders ----
def _timed(f, repeat=3, **kw):
    """(result, best wall time of ``repeat`` calls after a warm-up call)."""
    import time
    out = f(**kw)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f(**kw)
        best = min(best, time.perf_counter() - t0)
    return out, best


@pytest.mark.usefixtures("numpy_backend")
@pytest.mark.parametrize("weight_mean", [0.0, 2.0])
def test_stbp_depth_callback_draws_the_depth_profiles(weight_mean):
    import numpy as np
    from snnkit.stbp import LIFParameters, depth_profile
    from snnkit.widgets import stbp as wstbp
    kw = dict(depth=16, v_th=0.4, alpha=1.0, half_width=0.5, gain=1.0, weight_mean=weight_mean)     # the notebook's
    fig, dt = _timed(wstbp.depth_callback, **kw)
    print(f"depth_callback(weight_mean={weight_mean}): {dt * 1e3:.1f} ms (target < 150 ms)")
    assert dt < 1.5
    assert len(fig.data) == 6                                   # 3 norms x (rate, window share)
    rate = {t.name: t for t in fig.data if t.xaxis == "x"}
    window = {t.name: t for t in fig.data if t.xaxis == "x2"}
    assert list(rate) == list(window) == ["none", "plain BN", "tdBN"]
    for label, norm in wstbp.NORM_LABELS.items():
        p = depth_profile(16, 96, 4, 16, norm, LIFParameters(v_th=0.4, half_width=0.5), 1.0, gain=1.0,
                          weight_mean=weight_mean, seed=0)
        np.testing.assert_array_equal(rate[label].x, np.arange(1, 17))
        np.testing.assert_allclose(rate[label].y, p["rate"])
        np.testing.assert_allclose(window[label].y, p["in_window"])
    assert f"weight mean={weight_mean:g}" in fig.layout.title.text
    lay = fig.layout                                            # two panels side by side, rates in [0, 1]
    assert lay.xaxis.domain[1] < lay.xaxis2.domain[0] and tuple(lay.yaxis.range) == tuple(lay.yaxis2.range) == (0, 1.02)
    assert [a.text for a in lay.annotations] == ["spikes per neuron per step", "share of u inside the surrogate window"]
    if weight_mean == 0:                                        # zero-mean weights: silence with depth
        assert rate["none"].y[-1] == 0 and min(rate["tdBN"].y) > 0.1
    else:                                                       # excitatory: saturation with depth
        assert min(rate["none"].y[-3:]) > 0.95 and max(window["none"].y[-3:]) < 0.15
        assert max(rate["tdBN"].y) < 0.5


@pytest.mark.usefixtures("numpy_backend")
@pytest.mark.parametrize("v_th, alpha, aa", [(0.4, 1.0, 0.5), (0.8, 1 / 2 ** 0.5, 0.3)])
def test_stbp_preactivation_callback_draws_histograms_threshold_and_window(v_th, alpha, aa):   # aa: half_width
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    fig, dt = _timed(wstbp.preactivation_callback, v_th=v_th, alpha=alpha, half_width=aa)
    print(f"preactivation_callback(v_th={v_th}, alpha={alpha:.3f}, aa={aa}): {dt * 1e3:.1f} ms (target < 150 ms)")
    assert dt < 1.5
    assert [t.type for t in fig.data] == ["histogram"] * 3
    hist = {t.name: np.asarray(t.x) for t in fig.data}
    assert list(hist) == ["no normalization", "plain BN", "tdBN"]
    assert all(v.size == 4096 * 8 for v in hist.values())
    np.testing.assert_allclose(hist["tdBN"].std(), alpha * v_th, rtol=1e-3)   # N(0, (alpha Vth)^2)
    np.testing.assert_allclose(hist["plain BN"].std(), 1.0, rtol=1e-3)        # N(0, 1), blind to Vth
    assert abs(hist["tdBN"].mean()) < 1e-3 and hist["no normalization"].std() < 0.5
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(rects) == 1 and np.isclose(rects[0].x0, v_th - aa) and np.isclose(rects[0].x1, v_th + aa)
    assert len(lines) == 1 and np.isclose(lines[0].x0, v_th) and np.isclose(lines[0].x1, v_th)
    assert sorted(a.text for a in fig.layout.annotations) == ["Vth", "surrogate window"]


@pytest.mark.usefixtures("numpy_backend")
def test_stbp_depth_panel_has_a_weight_mean_slider_and_redraws():
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    box = wstbp.depth_panel()
    sliders = {s.description: s for s in box.children[0].children}
    assert set(sliders) == {"depth", "Vth", "alpha", "half-width a", "weight gain", "weight mean"}
    assert sliders["weight mean"].value == 0.0 and sliders["weight gain"].value == 1.0    # old behaviour
    ref = wstbp.depth_callback()
    for got, want in zip(box.figure.data, ref.data):
        np.testing.assert_allclose(got.y, want.y)
    sliders["weight mean"].value = 2.0
    sliders["depth"].value = 12
    want = wstbp.depth_callback(depth=12, weight_mean=2.0)
    assert len(box.figure.data) == 6 and "weight mean=2" in box.figure.layout.title.text
    for got, w in zip(box.figure.data, want.data):
        np.testing.assert_allclose(got.y, w.y)
    assert box.figure.data[0].name == "none" and min(box.figure.data[0].y[-3:]) > 0.95   # saturated


@pytest.mark.usefixtures("numpy_backend")
def test_stbp_preactivation_panel_redraws():
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    box = wstbp.preactivation_panel()
    sliders = {s.description: s for s in box.children[0].children}
    assert set(sliders) == {"Vth", "alpha", "half-width a"}
    sliders["Vth"].value = 1.0
    tdbn = [t for t in box.figure.data if t.name == "tdBN"][0]
    np.testing.assert_allclose(np.asarray(tdbn.x).std(), 1.0, rtol=1e-3)          # alpha Vth = 1
    line = [s for s in box.figure.layout.shapes if s.type == "line"][0]
    assert np.isclose(line.x0, 1.0)


@pytest.mark.usefixtures("numpy_backend")
def test_stbp_gradient_callback_draws_gradient_norms_and_rates_by_depth():
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    fig, dt = _timed(wstbp.gradient_callback, depth=12, v_th=0.4, window=1.25)
    print(f"gradient_callback(depth=12): {dt * 1e3:.1f} ms (target < 300 ms)")
    assert dt < 1.5
    assert len(fig.data) == 6                                   # 3 norms x (gradient norm, rate)
    grad = [t for t in fig.data if t.xaxis == "x"]
    rate = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.legendgroup for t in grad] == [t.legendgroup for t in rate] == ["none", "plain BN", "tdBN"]
    ref = wstbp.gradient_profiles(12, 0.4, 1.25)
    for g, r, (label, p) in zip(grad, rate, ref.items()):
        np.testing.assert_array_equal(g.x, np.arange(1, 13))
        np.testing.assert_allclose(r.y, p["rate"])
        shown = np.asarray(g.y, dtype=float)
        zero = p["grad_norm"] == 0
        assert np.all(np.isnan(shown[zero])) and np.allclose(shown[~zero], p["grad_norm"][~zero])
    assert grad[0].name.startswith("none (0 from layer ")       # the silent stack says where its gradient stops
    assert fig.layout.yaxis.type == "log"


@pytest.mark.usefixtures("numpy_backend")
def test_stbp_gradient_panel_redraws():
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    box = wstbp.gradient_panel()
    sliders = {s.description: s for s in box.children[0].children}
    assert set(sliders) == {"depth", "Vth", "a / Vth"}
    sliders["Vth"].value = 1.0
    sliders["depth"].value = 6
    want = wstbp.gradient_callback(depth=6, v_th=1.0, window=1.25)
    for got, w in zip(box.figure.data, want.data):
        np.testing.assert_allclose(np.asarray(got.y, dtype=float), np.asarray(w.y, dtype=float))
    assert "depth 6, Vth=1" in box.figure.layout.title.text


def _slider_values(s):
    import numpy as np
    if isinstance(s, W.IntSlider):
        return list(range(s.min, s.max + 1, s.step))
    return [float(v) for v in np.round(np.arange(s.min, s.max + s.step / 2, s.step), 10)]


@pytest.mark.usefixtures("numpy_backend")
@pytest.mark.parametrize("panel", ["depth_panel", "preactivation_panel", "gradient_panel"])
def test_stbp_every_slider_value_in_range_draws_without_error_or_warning(panel):
    """Each slider of the panel swept over its whole range through the callback (the others at their
    defaults), then all sliders at their minima and at their maxima: no exception, no warning (overflow
    included; underflow is harmless), and a figure with traces every time."""
    import warnings
    import numpy as np
    from snnkit.widgets import stbp as wstbp
    callback, controls = wstbp.PANELS[panel]
    sliders = controls()
    defaults = {k: s.value for k, s in sliders.items()}
    calls = [dict(defaults, **{k: v}) for k, s in sliders.items() for v in _slider_values(s)]
    calls += [{k: s.min for k, s in sliders.items()}, {k: s.max for k, s in sliders.items()}]
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        for kw in calls:
            assert len(callback(**kw).data) > 0, f"{panel}{kw} drew nothing"
    box = getattr(wstbp, panel)()                               # the panel is built from the same controls
    assert [s.description for s in box.children[0].children] == [s.description for s in sliders.values()]


def test_stbp_firing_rate_figures():
    import numpy as np
    from snnkit.viz.stbp import firing_rate_bars, firing_rate_by_step
    rates = {"tdBN": {"lif1": 0.2, "s1.b1.lif2": 0.3}, "none": {"lif1": 0.1, "s1.b1.lif2": 0.0}}
    fig = firing_rate_bars(rates)
    assert [t.name for t in fig.data] == ["tdBN", "none"] and all(t.type == "bar" for t in fig.data)
    assert list(fig.data[0].x) == ["lif1", "s1.b1.lif2"] and list(fig.data[1].y) == [0.1, 0.0]
    heat = firing_rate_by_step({"lif1": np.array([0.1, 0.3]), "fc1_lif": np.array([0.2, 0.4])})
    np.testing.assert_allclose(heat.data[0].z, [[0.1, 0.3], [0.2, 0.4]])
    assert list(heat.data[0].y) == ["lif1", "fc1_lif"] and list(heat.data[0].x) == ["t = 0", "t = 1"]


@pytest.mark.brian2
def test_bats_neuron_callback_overlays_brian2_at_the_chosen_step():
    pytest.importorskip("brian2")
    from snnkit.widgets.bats import neuron_callback, one_neuron
    fig = neuron_callback(brian_dt=1e-4)
    names = [tr.name for tr in fig.data]
    assert "Brian2 (dt = 100 us)" in names
    brian = next(tr for tr in fig.data if tr.name.startswith("Brian2"))
    assert len(brian.x) > 1000 and max(brian.y) > 0
    _, _, spikes, _ = one_neuron([0.02, 0.05, 0.12], [1.0, 0.8, -0.5], 0.03, 0.01)
    assert f"Brian2: {len(spikes)} spikes" in fig.layout.title.text       # same count at 100 us
    assert not any(n and n.startswith("Brian2") for n in (tr.name for tr in neuron_callback().data))
