"""Lessons 03 (exact gradients, BATS) and 04 (gradient sparsity, S3GD): the exercise checks' three
verdicts, the panels' callbacks over every slider value, and the helpers whose numbers the notebooks'
claims print (the claims themselves run in strict mode when test_notebooks.py executes the notebooks)."""
import json
import re

import numpy as np
import pytest

from snnkit import exercises, lessons
from snnkit.tour import notebook_paths

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")


# ---- 03: exercise checks ------------------------------------------------------------------------
def test_critical_weight_is_the_closed_form_and_the_check_says_so(lenient, capsys):
    """Notebook 03 recalls w* (the exercise and its check are notebook 02's; both must agree)."""
    from snnkit.exercises.exact_gradients import critical_weight
    from snnkit.bats.simulate import simulate
    w_star = critical_weight(0.03, 0.01)
    assert w_star == pytest.approx(2 * 0.01 / 0.03, rel=1e-9)         # b^2 = 4ac at w = 2 theta / tau_s
    fires = lambda w: simulate(np.array([[w]]), np.zeros((1, 1, 1)), 0.03, 0.01, t_max=np.inf).counts[0, 0]
    assert fires(w_star * (1 + 1e-6)) == 1 and fires(w_star * (1 - 1e-6)) == 0
    assert exercises.check_critical_weight(2 * 0.01 / 0.03) is True
    assert exercises.check_critical_weight(0.5) is False
    assert exercises.check_critical_weight(4 * 0.01 / 0.03) is False           # 4 theta / tau_s: tau_s for tau
    assert exercises.check_critical_weight(...) is None
    assert exercises.check_critical_weight(1.0, tau_s=0.005, theta=0.0025) is True   # computed, not typed in
    out = capsys.readouterr().out
    assert "✓ critical_weight" in out and "✗ critical_weight" in out and "replace the `...`" in out   # notebook 02's check


def test_grazing_exponent_is_minus_one_half(lenient):
    from snnkit.exercises.exact_gradients import critical_weight, grazing_exponent, spike_time_gradient
    assert grazing_exponent() == pytest.approx(-0.5, abs=0.03)
    assert exercises.check_grazing_exponent(-0.5) is True
    assert exercises.check_grazing_exponent(-1.0) is False
    assert exercises.check_grazing_exponent(0.5) is False
    assert exercises.check_grazing_exponent(...) is None
    w_star = critical_weight()
    assert np.isnan(spike_time_gradient(0.99 * w_star))                      # no spike: no gradient
    # the guard: below eps ~ 1e-9 the gradient stops growing, at tau (1 - 1/z) / (X_GUARD c z) with z = 2
    from snnkit.bats import X_GUARD
    cap = 0.06 / (X_GUARD * (0.01 / 0.06) * 2.0) * 0.5
    for eps in (1e-10, 1e-12):
        assert abs(spike_time_gradient(w_star * (1 + eps))) == pytest.approx(cap, rel=1e-6)
    assert abs(spike_time_gradient(w_star * (1 + 1e-6))) < cap


def test_gradient_sign_is_negative_for_every_earlier_input(lenient):
    from snnkit.exercises.exact_gradients import gradient_signs
    s = gradient_signs(n_neurons=60, seed=3)
    assert s.size > 100 and (s == -1).all()
    assert exercises.check_gradient_sign(-1) is True
    assert exercises.check_gradient_sign(1) is False
    assert exercises.check_gradient_sign(...) is None


def test_a_wrong_solution_fails_loudly_in_strict_mode(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "1")
    with pytest.raises(exercises.ExerciseFailed, match="b\\^2 - 4ac"):
        exercises.check_critical_weight(0.5)


# ---- 03: the gradient panel ------------------------------------------------------------------------
def test_gradient_panel_offers_only_existing_spikes_and_every_value_draws():
    W = pytest.importorskip("ipywidgets")
    from snnkit.widgets.bats import GRAD_T_IN, GRAD_W, gradient_callback, gradient_panel, one_neuron
    _, _, spikes, _ = one_neuron(GRAD_T_IN, GRAD_W, 0.03, 0.01)
    box = gradient_panel()
    sliders = {s.description: s for s in box.children[0].children}
    assert sliders["spike k"].max == len(spikes) - 1 == 2                   # the old slider went to 3
    assert sliders["weight j"].max == len(GRAD_W) - 1
    e = sliders["FD eps"]
    eps_values = 10.0 ** np.arange(e.min, e.max + e.step / 2, e.step)
    for j in range(sliders["weight j"].max + 1):
        for k in range(sliders["spike k"].max + 1):
            for eps in eps_values:
                fig = gradient_callback(j=j, k=k, eps=eps)
                assert len(fig.data) >= 3 and f"spike {k} against w{j + 1}" in fig.layout.title.text
    sliders["spike k"].value = 2
    assert box.figure.layout.title.text.startswith("spike 2 against w1: exact")
    # past the neuron's spikes (another neuron, or a caller's k) the callback still returns a figure
    fig = gradient_callback(j=0, k=3)
    assert len(fig.data) == 0 and "No spike k = 3" in fig.layout.annotations[0].text
    # a step that makes the spike vanish on one side: no secant, said in the title, not a crash
    fig = gradient_callback(j=0, k=0, eps=0.9, w=(0.75, 0.0, 0.0), t_in=(0.0, 0.2, 0.25))
    assert "no finite difference" in fig.layout.title.text


def test_gradient_panel_explains_a_neuron_without_spikes():
    pytest.importorskip("ipywidgets")
    from snnkit.widgets.bats import gradient_panel
    with pytest.raises(ValueError, match="does not spike"):
        gradient_panel(w=(0.1, 0.1, 0.1))


# ---- 03: convergence experiment ------------------------------------------------------------------
def test_runs_that_start_dead_never_converge():
    from snnkit.bats.convergence import convergence_grid, convergence_runs
    grid = np.array([0.0, 1.0, 2.0])
    for mode in ("ttfs", "count"):
        r = convergence_runs(grid, grid, repeats=12, mode=mode, seed=2)
        conv, dead = r["converged"], r["dead_start"]
        assert conv.shape == dead.shape == (3, 3, 12)
        assert dead[0, 0].all() and not dead[2, 0].any()      # weights all 0: silent; all 2: both neurons fire
        assert dead.any() and not conv[dead].any()            # a dead start never converges
        np.testing.assert_array_equal(conv.mean(axis=2), convergence_grid(grid, grid, 12, mode, seed=2))
    with pytest.raises(ValueError, match="repeats"):
        convergence_runs(grid, grid, repeats=0)


# ---- 04: the delta panel, its checks, the work accounting ----------------------------------------
@pytest.fixture(scope="module")
def explorer():
    from snnkit import s3gd
    from snnkit.widgets.s3gd import DeltaExplorer
    r = np.random.default_rng(0)
    x = (r.random((8, 30, 20)) < 0.15).astype(np.float32)
    y = r.integers(0, 3, 8)
    net = s3gd.Network(20, 40, 3, 0.9, delta=0.2, seed=1, weight_scale=6.0)
    return DeltaExplorer(net, x, y)


def test_delta_panel_draws_every_slider_value_and_the_sparse_gradient_breaks(explorer):
    pytest.importorskip("ipywidgets")
    from snnkit.widgets.s3gd import DELTA_EXPONENTS
    box = explorer.panel()
    slider = box.children[0].children[0]
    assert slider.min == DELTA_EXPONENTS[0] and slider.max == DELTA_EXPONENTS[1]       # log slider
    assert 10 ** slider.min <= 0.001 and 10 ** slider.max >= 0.5
    curve = explorer.curve()
    assert np.allclose(np.log10(curve["delta"]), np.arange(slider.min, slider.max + slider.step / 2, slider.step))
    for d in curve["delta"]:
        fig = explorer.figure(d)
        markers = [t for t in fig.data if t.type == "scatter" and list(t.x) == [d]]
        assert len(markers) == 2 and f"delta = {d:.3g}" in fig.layout.title.text
    lowest = np.min([curve["cosine"][k] for k in ("hidden1", "hidden2")], axis=0)
    assert lowest[0] < 0.9 < lowest[-1]                 # the slider reaches the regime where it breaks
    slider.value = 0.01
    assert "delta = 0.01" in box.figure.layout.title.text


def test_breaking_delta_check(explorer, lenient):
    ds = np.geomspace(0.001, 0.3, 50)
    low = np.array([explorer.min_cosine(d) for d in ds])
    d_break = float(ds[low < 0.9].max())
    assert exercises.check_breaking_delta(d_break, explorer) is True
    assert exercises.check_breaking_delta(0.3, explorer) is False             # still >= 0.9 there
    assert exercises.check_breaking_delta(d_break / 8, explorer) is False     # below 0.9 at 2 d too
    assert exercises.check_breaking_delta(..., explorer) is None
    with pytest.raises(ValueError, match="delta must be > 0"):
        exercises.check_breaking_delta(-0.1, explorer)


def test_band_for_share_check(lenient):
    V = np.random.default_rng(4).normal(0.3, 0.4, (16, 50, 30)).astype(np.float32)
    d = float(np.quantile(np.abs(V - 1), 0.01))
    assert exercises.check_band_for_share(d, V, share=0.01) is True
    assert exercises.check_band_for_share(2 * d, V, share=0.01) is False
    assert exercises.check_band_for_share(0.01, V, share=0.01) is False       # "delta = the share" is wrong
    assert exercises.check_band_for_share(..., V) is None


def test_backward_work_counts_what_the_two_backward_passes_touch(explorer):
    from snnkit.s3gd.sparse import active_set
    from snnkit.widgets.s3gd import backward_work
    net = explorer.net
    net.forward(explorer.x)
    work = backward_work(net, delta=0.1)
    (h1, h2), (B, T, _) = net.hidden, explorer.x.shape
    A1, A2 = (active_set(h.V, 1.0, 0.1) for h in net.hidden)
    assert A1.n > 0 and A2.n > 0
    assert work["hidden1"]["entries"] == (B * T * h1.n_out, A1.n)
    assert work["hidden1"]["macs"] == (B * T * h1.n_in * h1.n_out, A1.n * h1.n_in)
    pairs = int((np.bincount(A2.b, minlength=B) * np.bincount(A1.b, minlength=B)).sum())
    assert work["hidden2"]["macs"] == (2 * B * T * h2.n_in * h2.n_out, A2.n * h2.n_in + pairs)
    assert work["hidden2"]["bytes"] == (2 * B * T * h2.n_out * 4, A2.n * 20 + 8 * (B * h2.n_out + 1) + A1.n * 4)
    for k in ("entries", "macs", "bytes"):
        assert work["total"][k] == tuple(work["hidden1"][k][i] + work["hidden2"][k][i] for i in (0, 1))
    assert backward_work(net, delta=0.4)["total"]["entries"][1] > work["total"]["entries"][1]


def test_recorded_benchmark_names_date_and_device(tmp_path):
    from snnkit.viz.s3gd import recorded_benchmark
    f = tmp_path / "RESULTS.md"
    f.write_text("## S3GD\n\n### 2026-12-01 (22:17 UTC), NVIDIA H200, graph\n\n"
                 "| shd | ours sparse + graph | 2.5 | 0.54 | 28 |\n| shd | ours fused dense | 2.4 | 3.3 | 299 |\n")
    rows = recorded_benchmark(f)
    assert [(r["date"], r["device"]) for r in rows] == [("2026-12-01", "NVIDIA H200")] * 2
    assert rows[0]["run"].startswith("2026-12-01 (22:17 UTC), NVIDIA H200")


# ---- both notebooks: no result typed into the prose -----------------------------------------------
LESSONS = [p for p in notebook_paths() if p.name[:2] in ("03", "04")]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_no_measured_number_is_typed_into_the_markdown(path):
    md = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    for m in md:
        assert not re.search(r"\d+\.\d+\s*%", m), f"{path.name}: a measured percentage in the prose: {m[:120]!r}"
        assert "from most initial weight distributions" not in m
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert code.count("claim(") >= 4, f"{path.name}: the claims are computed and checked"
