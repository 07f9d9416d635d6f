"""The dt slider's callback and the study's figures build headless (plotly, no widget front end)."""
import numpy as np
import pytest

pytest.importorskip("plotly")

from snnkit import datasets
from snnkit.bats.layers import latency_encoder
from snnkit.bats.study import build_network
from snnkit.viz.bats_dt import latency_figure, membrane_compare, raster_compare, sweep_figure
from snnkit.widgets.bats_dt import DtExplorer

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _explorer():
    x, y = datasets.load("digits", "test")
    net = build_network("16-10", 64, [0.1, 0.3], [3, 5], 0.13, 0.2, init=(-0.3, 1.0), seed=1)
    return net, DtExplorer(net, x[3], latency_encoder(0.1), label=int(y[3]))


def test_explorer_figures_and_summary():
    net, ex = _explorer()
    fig_r, fig_m = ex.figures(10.0)
    assert len(fig_r.data) == 4                              # 2 layers x (continuous, grid)
    grid = fig_r.data[1].x
    assert len(grid) and np.allclose(np.round(np.asarray(grid) / 10.0), np.asarray(grid) / 10.0)
    names = [d.name for d in fig_m.data]
    assert names[:2] == ["u continuous", "u discretized"] and "grid" in names
    s0, s10 = ex.summary(0), ex.summary(10.0)
    assert [r["mean_abs_shift_ms"] for r in s0] == [0.0, 0.0]
    assert all(0 < r["mean_abs_shift_ms"] <= 10.0 for r in s10 if r["spikes"])
    assert all(l.dt is None for l in net.layers[1:]), "the explorer restores the network's dt"
    with pytest.raises(ValueError, match="dt_ms"):
        ex.figures(-1.0)
    with pytest.raises(ValueError, match="ONE sample"):
        DtExplorer(net, np.zeros((2, 64)), latency_encoder(0.1))


@pytest.mark.parametrize("dt_ms", [0, 5.0])
def test_trace_reaches_threshold_at_each_continuous_crossing(dt_ms):
    """The plotted potential uses the inputs the simulation used and resets at the continuous
    crossings: just before every crossing t* it equals theta (float32 network, so 1e-4)."""
    from snnkit.bats.neuron import potential
    _, ex = _explorer()
    run = ex.continuous if dt_ms == 0 else ex._run(dt_ms / 1000.0)
    i, layer = ex.layers[-1]
    _, _, w, sim = run[i]
    used = np.asarray(sim.in_used)[0]
    n_checked = 0
    for n in range(layer.n_out):
        t_c = np.asarray(sim.t_cont)[0, n]
        for t_k in t_c[np.isfinite(t_c)]:
            earlier = t_c[t_c < t_k]
            u = potential([t_k - 1e-9], used.ravel(), np.repeat(w[n], used.shape[1]), earlier,
                          layer.tau_s, layer.delta_theta)[0]
            assert abs(u - layer.theta) < 1e-4 * max(1.0, layer.theta)
            n_checked += 1
    assert n_checked > 0


def test_one_figure_callback_and_prediction():
    from snnkit.bats.losses import TTFSCrossEntropy
    net, ex = _explorer()
    fig = ex.figure(10.0)
    names = [d.name for d in fig.data]
    assert names[:2] == ["continuous", "dt = 10 ms"] and "u continuous" in names and names[-1] == "grid"
    assert len(fig.layout.annotations) == 3                  # 2 raster rows + the membrane row, titled
    loss = TTFSCrossEntropy(0.02)
    x, _ = datasets.load("digits", "test")
    out = net.forward(latency_encoder(0.1)(x[3:4]))
    assert ex.predicted(0, loss) == int(loss.predict(out)[0])
    assert ex.predicted(100.0, loss) == -1                   # output reported after t_max: silent
    with pytest.raises(ValueError, match="dt_ms"):
        ex.predicted(-1, loss)


def test_panel_every_slider_step_redraws():
    """The panel is snnkit.widgets.interactive_figure over a short list of steps; every step in range
    redraws without an error (what a static rendering of the panel evaluates)."""
    pytest.importorskip("ipywidgets")
    net, ex = _explorer()
    box = ex.panel(max_ms=20.0, value_ms=5.0)
    slider = box.children[0].children[0]
    assert slider.options[0] == 0.0 and max(slider.options) == 20.0 and slider.value == 5.0
    for v in slider.options:
        slider.value = v                                    # the observer redraws box.figure
        grid = {d.name for d in box.figure.data if d.name and d.name.startswith("dt =")}
        assert grid == (set() if v == 0 else {f"dt = {v:g} ms"})
    assert all(l.dt is None for l in net.layers[1:])
    with pytest.raises(ValueError, match="value_ms"):
        ex.panel(max_ms=20.0, value_ms=30.0)


def test_study_figures():
    rows = [{"dt": d, "layer": name, "accuracy": a, "spikes_per_sample": s, "silent_share": z}
            for d, a in ((0.0, 0.9), (0.01, 0.8)) for name, s, z in (("h", 50.0, 0.1), ("o", 4.0, 0.7))]
    fig = sweep_figure(rows)
    assert len(fig.data) == 1 + 2 * 2
    lat = latency_figure({None: np.array([0, 0.5, 1.0]), 0.01: np.array([0, 0.2, 1.0])}, [0, 0.1, 0.2])
    assert [d.name for d in lat.data] == ["continuous", "dt = 10 ms"]
    with pytest.raises(ValueError, match="same layers"):
        raster_compare([], [1], ["a"])
    m = membrane_compare(np.linspace(0, 0.1, 5), np.zeros(5), np.zeros(5), [0.05], [0.06], 0.3, dt=0.01)
    assert m.data[-1].name == "grid"


def test_sweep_figure_shows_silent_outputs_and_chance():
    rows = [{"dt": d, "layer": name, "accuracy": a, "silent_output_share": so, "spikes_per_sample": 1.0,
             "silent_share": 0.5} for d, a, so in ((0.0, 0.9, 0.0), (0.06, 0.0, 1.0)) for name in ("h", "o")]
    fig = sweep_figure(rows, chance=0.1)
    by_name = {d.name: d for d in fig.data}
    assert list(by_name["samples with a silent output"].y) == [0.0, 1.0]
    assert list(by_name["chance (a guess)"].y) == [0.1, 0.1]
    assert len(fig.data) == 3 + 2 * 2


def test_latency_curves_each_have_their_own_colour():
    """Ten curves (continuous + 9 grids, as the old notebook had) get ten colours: black, then the
    grids in the order of dt along one colour scale."""
    dts = [None] + [d / 1000 for d in (0.1, 0.5, 2, 5, 10, 20, 30, 45, 60)]
    lat = latency_figure({d: np.linspace(0, 1, 5) for d in dts}, np.linspace(0, 0.2, 5))
    colors = [d.line.color for d in lat.data]
    assert len(colors) == 10 and len(set(colors)) == 10 and colors[0] == "black"
    assert [d.name for d in lat.data][1:3] == ["dt = 0.1 ms", "dt = 0.5 ms"]


def test_recorded_mnist_figure_reads_the_record():
    """Notebook 05's real-MNIST panel: every seed's trained accuracies and (where logged) the continuous
    weights run on the grid, the study's band and collapse, labelled axes with units."""
    import json
    from snnkit.reproduce import RECORDED
    from snnkit.viz.bats_dt import recorded_mnist_figure
    rec = json.loads((RECORDED / "time_discretization_sweep.json").read_text())
    fig = recorded_mnist_figure(rec["by_seed"], rec["fork"])
    assert fig.layout.xaxis.title.text == "dt (ms); 0 = continuous" and fig.layout.yaxis.title.text == "test accuracy (%)"
    trained = [d for d in fig.data if d.name.endswith("trained on the grid")]
    run_only = [d for d in fig.data if d.name.endswith("continuous weights run on it")]
    assert len(trained) == len(rec["by_seed"]) == len(run_only)
    for d, r in zip(trained, rec["by_seed"]):
        assert list(d.x) == r["dt_ms"] and list(d.y) == r["trained"]
    for d, r in zip(run_only, rec["by_seed"]):             # None (not logged) is left out, not drawn as 0
        assert list(d.y) == [c for c in r["continuous_weights_on_grid"] if c is not None]
    (x0, x1), (y0, y1) = rec["fork"]["band_dt_ms"], rec["fork"]["band_percent"]
    shape = fig.layout.shapes[0]
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (x0, x1, y0, y1)
    assert any(list(d.y) == rec["fork"]["collapse_percent"] for d in fig.data)
    assert not [d for d in fig.data if "earlier rule" in d.name]
    early = rec["earlier_rule"]["by_seed"]
    fig = recorded_mnist_figure(rec["by_seed"], rec["fork"], earlier=early)
    dotted = [d for d in fig.data if d.name.endswith("earlier rule (hidden spikes a step late)")]
    assert [list(d.y) for d in dotted] == [r["trained"] for r in early] and all(d.line.dash == "dot" for d in dotted)
    for d, r in zip(dotted, early):                        # the same colour as that seed's current run
        same = next(t for t in fig.data if t.name == f"seed {r['seed']}: trained on the grid")
        assert d.line.color == same.line.color


def test_count_vs_weight_figure_is_labelled():
    """Notebook 05's rejected-reset panel: one line per clock, the weights on x, whole spike counts on y."""
    from snnkit.viz.bats_dt import count_vs_weight_figure
    fig = count_vs_weight_figure(np.array([1.0, 2.0]), {"continuous": np.array([1, 3]), "8 ms grid": np.array([1, 2])},
                                 theta=1.3)
    assert [d.name for d in fig.data] == ["continuous", "8 ms grid"]
    assert list(fig.data[1].y) == [1, 2] and list(fig.data[0].x) == [1.0, 2.0]
    assert fig.layout.xaxis.title.text.startswith("weight w") and "count" in fig.layout.yaxis.title.text
    assert fig.data[0].line.color != fig.data[1].line.color
