"""Lessons 00-02 (welcome, one LIF three clocks, spike timing): the exercise checks give their three
verdicts, the panels work for every value of every control, the bridge's claims hold as properties
of the functions (not only on the notebook's defaults), and the symbol table and the README's
Glossary name things that exist in the code. The notebooks themselves run with strict claims in
tests/test_notebooks.py."""
import math
import re
from pathlib import Path

import numpy as np
import pytest

from snnkit import exercises, lessons, neurons
from snnkit.bats import simulate
from snnkit.bats.neuron import potential

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")


# ---- exercise checks: right -> True, wrong -> False (strict off), placeholder -> None ------------------
def _verdicts(check, right, wrongs, **kw):
    assert check(right, **kw) is True
    for wrong in wrongs:
        assert check(wrong, **kw) is False, wrong
    assert check(..., **kw) is None


def test_welcome_checks(lenient):
    x = np.linspace(0, 1, 64)
    _verdicts(exercises.check_log_latency_step, math.floor(20 * math.log(0.6 / 0.4)), [9, 7, 8.1, "eight"])
    _verdicts(exercises.check_log_latency_step, math.floor(20 * math.log(0.9 / 0.7)), [8, 6], x=0.9)
    _verdicts(exercises.check_cutoff_intensity, 0.2 / (1 - math.exp(-1)), [0.2, 0.3, 0.4])
    _verdicts(exercises.check_cutoff_intensity, 0.2 / (1 - math.exp(-2)), [0.2 / (1 - math.exp(-1))], n_steps=40)
    _verdicts(exercises.check_poisson_spike_count, 20 * 0.5 * x.sum(), [20 * x.sum(), 0.5 * x.sum()], x=x)


def test_clocks_checks(lenient):
    _verdicts(exercises.check_stbp_time_constant, -1 / math.log(0.25), [4.0, 1 / 0.75, 0.25, 1.0])
    _verdicts(exercises.check_stbp_time_constant, -2 / math.log(0.25), [-1 / math.log(0.25)], dt_ms=2.0)
    closed = lambda I, b: math.ceil(math.log(1 - (1 - b) / I) / math.log(b)) - 1
    _verdicts(exercises.check_first_spike_step, closed(0.08, 0.95), [20, 18, 19.5])
    _verdicts(exercises.check_first_spike_step, closed(0.3, 0.8), [closed(0.3, 0.8) + 1], current=0.3, beta=0.8)


def test_spike_timing_checks(lenient):
    tau_s, theta = 0.03, 0.01
    tau = 2 * tau_s
    t, w = np.array([0.01, 0.02]), np.array([0.5, 0.6])
    a, b, c = (w * np.exp(t / tau_s)).sum(), (w * np.exp(t / tau)).sum(), theta / tau
    x = math.sqrt(b * b - 4 * a * c)
    late = tau * math.log((b + x) / (2 * c))
    _verdicts(exercises.check_spike_time, tau * math.log(2 * a / (b + x)), [late, 0.02, 0.0286])
    _verdicts(exercises.check_critical_weight, 4 * theta / tau, [theta / tau, 0.6, 0.7, 1.0])
    _verdicts(exercises.check_critical_weight, 4 * 0.02 / 0.1, [4 * theta / tau], tau_s=0.05, theta=0.02)
    _verdicts(exercises.check_three_spikes, [1.6, 0.5], [[1.0, 0.5], [3.0, 0.0], [1.6], [1.6, np.nan], "1.6, 0.5"])


def test_three_spikes_solution_range_is_what_the_notebook_says():
    """The solution cell says 'any w1 from about 1.5 to 1.75 gives three'."""
    for w1 in (1.5, 1.6, 1.75):
        s = simulate(np.array([[w1, 0.5]]), np.array([[[0.02], [0.10]]]), 0.03, 0.01, max_spikes=32).times[0, 0]
        assert ((s > 0.02) & (s < 0.10)).sum() == 3, w1


# ---- panels: every value of every control draws a figure ------------------------------------------
def _grid(control, cap=None):
    import ipywidgets as W
    if isinstance(control, W.FloatLogSlider):
        exps = np.arange(control.min, control.max + 1e-9, control.step)
        vals = control.base ** exps
    elif isinstance(control, W.Dropdown):
        vals = [v for _, v in control.options]
    else:
        vals = np.arange(control.min, control.max + control.step / 2, control.step)
    vals = list(vals)
    if cap and len(vals) > cap:                    # endpoints plus an even spread
        vals = [vals[i] for i in np.unique(np.linspace(0, len(vals) - 1, cap).round().astype(int))]
    return vals


@pytest.mark.parametrize("panel", ["encoding", "clocks", "surrogate"])
def test_every_control_value_draws(panel):
    pytest.importorskip("ipywidgets")
    from snnkit.widgets import clocks, encoding
    box = {"encoding": encoding.encoding_panel, "clocks": clocks.clocks_panel,
           "surrogate": clocks.surrogate_panel}[panel]()
    for control in box.children[0].children:
        start = control.value
        for v in _grid(control, cap=12 if control.description == "digit" else None):
            control.value = v                       # observe -> redraw: raises if the callback does
            assert len(box.figure.data) > 0, (control.description, v)
        control.value = start


def test_encoding_figure_has_no_nan_for_the_widget():
    """A FigureWidget sends JSON, which has no NaN: silent pixels must be None (else a stderr warning)."""
    from snnkit.widgets.encoding import encoding_callback
    fig = encoding_callback(0, 0.5, 10)
    z = fig.data[1].z
    flat = [v for row in z for v in row]
    assert None in flat and not any(isinstance(v, float) and math.isnan(v) for v in flat)


def test_neuron_figure_marks_inputs_and_units():
    from snnkit.widgets.bats import neuron_callback
    fig = neuron_callback(0.02, 0.05, 0.12, 1.0, 0.8, -0.5)
    texts = [a.text for a in fig.layout.annotations]
    assert {"input w=1", "input w=0.8", "input w=-0.5"} <= set(texts)
    assert "a.u." in fig.layout.yaxis.title.text


# ---- the bridge's claims as properties ------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_three_clocks_agree_on_the_grid_until_the_first_spike(seed):
    rng = np.random.default_rng(seed)
    t_in = np.sort(rng.uniform(0, 0.1, 3))
    w = rng.uniform(0.8, 2.0, 3)
    dt = float(rng.choice([5e-4, 1e-3, 4e-3]))
    r = neurons.three_clocks(t_in, w, tau_s=0.03, theta=0.01, dt=dt)
    assert len(r.spikes_bats) > 0
    before = r.t_k < r.spikes_bats[0]
    np.testing.assert_allclose(r.v_s3gd[before], r.u_bats_steps[before], atol=1e-9)
    np.testing.assert_allclose(r.u_stbp[before], r.u_bats_steps[before], atol=1e-9)
    first = r.t_k[np.searchsorted(r.t_k, r.spikes_bats[0])]
    assert r.spikes_s3gd[0] == first and r.spikes_stbp[0] == first


def test_decay_factor_and_euler():
    assert neurons.decay_factor(1.0, 10.0) == pytest.approx(math.exp(-0.1))
    assert neurons.euler_factor(1.0, 10.0) == pytest.approx(0.9)
    assert neurons.time_constant(neurons.decay_factor(2.0, 7.0), 2.0) == pytest.approx(7.0)
    with pytest.raises(ValueError, match="dt"):
        neurons.decay_factor(0, 1.0)
    with pytest.raises(ValueError, match="tau"):
        neurons.decay_factor(1.0, -1)
    with pytest.raises(ValueError, match="beta"):
        neurons.time_constant(1.0, 1.0)
    with pytest.raises(ValueError, match="one weight per input"):
        neurons.step_input([0.1, 0.2], [1.0], 0.03, 0.01, 1e-3, 0.2)


@pytest.mark.parametrize("I,beta", [(0.08, 0.95), (0.06, 0.95), (0.3, 0.8), (1.5, 0.5)])
def test_first_spike_step_is_the_geometric_series(I, beta):
    closed = math.ceil(math.log(1 - (1 - beta) / I) / math.log(beta)) - 1
    assert neurons.first_spike_step(I, beta) == closed
    assert neurons.first_spike_step(0.9 * (1 - beta), beta) is None      # limit below threshold: never


@pytest.mark.parametrize("tau_s,theta", [(0.03, 0.01), (0.05, 0.2)])
def test_critical_weight_is_where_the_discriminant_turns(tau_s, theta):
    wc = neurons.critical_weight(tau_s, theta)
    fire = lambda w: int(simulate(np.array([[w]]), np.zeros((1, 1, 1)), tau_s, theta).counts[0, 0])
    assert fire(wc * (1 + 1e-6)) == 1 and fire(wc * (1 - 1e-6)) == 0
    # the peak of one input's response is w tau / 4 (the closed-form peak tau b^2 / (4a))
    t = np.linspace(0, 20 * tau_s, 20001)
    assert potential(t, [0.0], [wc], [], tau_s, theta).max() == pytest.approx(theta, rel=1e-6)


def test_exact_gradient_is_zero_exactly_without_a_spike():
    peaks = np.array([0.5, 0.9, 0.999, 1.001, 1.5])
    _, t_first, dtdw = neurons.exact_gradient_curve(peaks)
    assert np.all(dtdw[:3] == 0) and np.all(np.isinf(t_first[:3]))
    assert np.all(dtdw[3:] < 0) and abs(dtdw[3]) > abs(dtdw[4])


def test_dead_neuron_gets_gradient_only_from_the_surrogates():
    g = neurons.dead_neuron_gradients([0.01], [0.55])
    (n_b, g_b), (n_s, g_s), (n_r, g_r) = g.values()
    assert n_b == n_s == n_r == 0
    assert g_b[0] == 0 and g_s[0] < 0 and g_r[0] < 0
    # and the STBP rectangle gives nothing once the peak is further than half_width below threshold
    far = neurons.dead_neuron_gradients([0.01], [0.2], half_width=0.5)     # peak 0.3 theta
    assert list(far.values())[2][1][0] == 0


def test_surrogates_are_the_toolkits():
    from snnkit.s3gd.lif import fast_sigmoid_grad
    u = np.linspace(0, 2, 41)
    s = neurons.surrogates(u, scale=50, half_width=0.25)
    np.testing.assert_allclose(s["S3GD fast sigmoid"], fast_sigmoid_grad(u, 1.0, 50))
    np.testing.assert_allclose(s["STBP rectangle"], (np.abs(u - 1) < 0.25) / 0.5)


@pytest.mark.parametrize("seed", range(3))
def test_discriminant_sign_is_whether_the_peak_reaches_threshold(seed):
    """Notebook 02, step 6, for random single inputs: b^2 >= 4ac  <=>  max u >= theta  <=>  a spike."""
    rng = np.random.default_rng(seed)
    tau_s, theta = 0.03, 0.01
    tau = 2 * tau_s
    for tj, wj in zip(rng.uniform(0, 0.05, 20), rng.uniform(0.1, 1.5, 20)):
        a, b, c = wj * math.exp(tj / tau_s), wj * math.exp(tj / tau), theta / tau
        disc = b * b - 4 * a * c
        if abs(disc) < 1e-9 * b * b:
            continue
        t = np.linspace(tj, tj + 10 * tau, 20001)
        peak = potential(t, [tj], [wj], [], tau_s, theta).max()
        assert tau * b * b / (4 * a) == pytest.approx(peak, rel=1e-6)
        spikes = int(simulate(np.array([[wj]]), np.array([[[tj]]]), tau_s, theta).counts[0, 0])
        assert (disc >= 0) == (peak >= theta) == (spikes == 1)


# ---- the symbol table and the README's Glossary ----------------------------------------------------
def _code_names(cell):
    return [n for n in re.findall(r"`([^`]+)`", cell) if re.fullmatch(r"[A-Za-z_]\w*", n)]


def test_symbol_table_names_exist_in_the_sources():
    cols = {2: "BATS", 3: "S3GD", 4: "STBP"}
    for row in neurons.SYMBOLS:
        for col, model in cols.items():
            text = "\n".join((ROOT / f).read_text() for f in neurons.SOURCES[model])
            for name in _code_names(row[col]):
                assert re.search(rf"\b{re.escape(name)}\b", text), f"{model}: `{name}` ({row[0]}) not in {neurons.SOURCES[model]}"
    table = neurons.symbol_table()
    assert table.count("\n") == len(neurons.SYMBOLS) + 1


def test_readme_glossary_has_every_symbol_and_layout():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^## Glossary\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    assert m, "README has no '## Glossary' section"
    gloss = m.group(1)
    for layout in ("[B, N, S]", "[B, T, N]", "[T, B, H, W, C]"):
        assert layout in gloss, layout
    for row in neurons.SYMBOLS:
        for cell in row[2:]:
            for name in _code_names(cell):
                assert f"`{name}`" in gloss, f"Glossary lacks `{name}` ({row[0]})"
    assert "| 01 | one LIF, three clocks |" in readme, "the notebook table lists the bridge notebook 01"
