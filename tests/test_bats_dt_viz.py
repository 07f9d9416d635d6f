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


def test_panel_draws_both_figures_and_redraws_them_in_place():
    pytest.importorskip("ipywidgets")
    _, ex = _explorer()
    box = ex.panel(max_ms=20.0)
    (slider,) = box.children[0].children
    (raster, _, _), (membrane, _, _) = box.outputs
    assert slider.max == 20.0 and len(raster.data) > 0 and len(membrane.data) > 0
    slider.value = 10.0
    assert box.outputs[0][0] is raster and "10" in membrane.layout.title.text


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
