"""BATS dense layer on the CPU: closed form, exact gradients (finite differences in float64),
losses, bad input, overflow reporting, time discretization."""
import numpy as np
import pytest
from scipy.optimize import brentq

import snnkit.bats as sb
from snnkit.spikes import SpikeTrains

from gradcheck import fd_check

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _u(t, inputs, w, tau_s, resets=(), delta_theta=0.0):
    """Membrane potential from the superposition of PSP kernels (independent of the simulator)."""
    tau = 2 * tau_s
    u = 0.0
    for tj, wj in zip(inputs, w):
        if t > tj:
            u += wj * tau * (np.exp(-(t - tj) / tau) - np.exp(-(t - tj) / tau_s))
    for tk in resets:
        if t > tk:
            u -= delta_theta * np.exp(-(t - tk) / tau)
    return u


def test_single_neuron_matches_root_of_potential():
    tau_s, theta = 0.01, 0.004
    t_in, w = [0.003, 0.011, 0.02], [1.0, 0.6, -0.2]
    sim = sb.simulate(np.array([w]), np.array(t_in)[None, :, None], tau_s, theta, max_spikes=5, t_max=0.2)
    times = sim.times[0, 0, :sim.counts[0, 0]]
    assert len(times) >= 1
    # first crossing: bracket on a fine grid, then root-find the independent formula
    grid = np.linspace(0, 0.2, 200001)
    resets = []
    for k, tk in enumerate(times):
        u = np.array([_u(t, t_in, w, tau_s, resets, theta) for t in grid[(grid > (resets[-1] if resets else 0))][:40000]])
        sub = grid[(grid > (resets[-1] if resets else 0))][:40000]
        i = np.argmax(u >= theta)
        root = brentq(lambda t: _u(t, t_in, w, tau_s, resets, theta) - theta, sub[i - 1], sub[i])
        assert abs(root - tk) < 1e-10
        resets.append(tk)


def _random_problem(seed, B=3, n_in=12, n_hidden=8, n_out=4, s_in=2):
    rng = np.random.default_rng(seed)
    ws = [rng.uniform(-0.3, 1.2, (n_hidden, n_in)), rng.uniform(-0.3, 1.5, (n_out, n_hidden))]
    t_in = np.where(rng.random((B, n_in, s_in)) < 0.8, rng.uniform(0, 0.05, (B, n_in, s_in)), np.inf)
    return ws, np.sort(t_in, axis=2), rng


SET = dict(tau_s=0.01, t_max=0.2, layers=[(0.01, 6), (0.01, 5)])


def _net(ws, t_in):
    sims, t = [], t_in
    for w, (theta, S) in zip(ws, SET["layers"]):
        s = sb.simulate(w, t, SET["tau_s"], theta, max_spikes=S, t_max=SET["t_max"])
        sims.append(s)
        t = s.times
    return sims


def _loss(sims, c):
    t = sims[-1].times
    return float(np.where(np.isfinite(t), t * c, 0).sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradients_match_finite_differences_float64(seed):
    ws, t_in, rng = _random_problem(seed)
    sims = _net(ws, t_in)
    assert sims[0].counts.sum() > 10 and sims[1].counts.sum() > 5      # multi-spike regime
    assert sims[0].counts.max() > 1
    c = rng.normal(size=sims[-1].times.shape)
    g = np.where(np.isfinite(sims[-1].times), c, 0)
    grads = [None, None]
    for l in (1, 0):
        grads[l], g = sb.backward(ws[l], sims[l], g, SET["tau_s"], SET["layers"][l][0])

    def f():
        s2 = _net(ws, t_in)
        if any((a.counts != b.counts).any() or (a.overflow != b.overflow).any() for a, b in zip(s2, sims)):
            return None                           # a spike appeared or disappeared: not differentiable here
        return _loss(s2, c)

    fd_check(f, [ws[0], ws[1], t_in], [grads[0], grads[1], g], eps=1e-6, rtol=1e-5, floor=1e-3,
             entries=[list(np.ndindex(*ws[0].shape)), list(np.ndindex(*ws[1].shape)),
                      list(zip(*np.nonzero(np.isfinite(t_in))))], min_checked=151)


def test_count_and_ttfs_losses_gradients():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, (4, 3, 5)), axis=2)
    t[0, 1] = np.inf
    t[1, :, 3:] = np.inf
    counts = np.isfinite(t).sum(axis=2).astype(np.int32)
    out = SpikeTrains(t, counts, np.zeros_like(counts))
    y = np.array([0, 1, 2, 1])
    # TTFS: gradient of the loss value wrt first times, by finite differences
    for loss, cases in [(sb.TTFSCrossEntropy(tau_loss=0.1), [(1, 2), (3, 1), (2, 0)]),
                        (sb.TTFSCrossEntropy(tau_loss=0.1, t_silent=2.0), [(0, 0), (0, 2), (1, 1)])]:
        v, g = loss(out, y)
        assert np.all(g[:, :, 1:] == 0) and g[0, 1, 0] == 0       # silent neuron: nothing to move
        for b, n in cases:
            t2 = t.copy()
            t2[b, n, 0] += 1e-7
            v2, _ = loss(SpikeTrains(t2, counts, counts * 0), y)
            assert abs((v2 - v) / 1e-7 - g[b, n, 0]) < 1e-5
    # prediction reads the first slot, also for S > 1
    assert list(loss.predict(out)) == list(np.argmin(t[:, :, 0], axis=1))
    # count loss: error (target - n) / B on every stored slot
    cl = sb.SpikeCountLoss(4, 1)
    v, g = cl(out, y)
    target = np.where(np.arange(3)[None] == y[:, None], 4, 1)
    err = (target - counts) / 4
    assert v == pytest.approx(0.5 * ((target - counts) ** 2).sum() / 4)
    assert np.allclose(g, np.where(np.isfinite(t), err[:, :, None], 0))
    # count prediction: most spikes, ties by earliest first spike; all silent -> -1
    t3 = np.full((2, 3, 2), np.inf)
    t3[0, 0, :2] = [0.5, 0.6]
    t3[0, 2, :2] = [0.4, 0.9]
    c3 = np.isfinite(t3).sum(axis=2).astype(np.int32)
    assert list(cl.predict(SpikeTrains(t3, c3, c3 * 0))) == [2, -1]


def test_overflow_is_reported_not_dropped():
    w = np.array([[3.0]])
    t_in = np.array([[[0.0]]])
    big = sb.simulate(w, t_in, 0.01, 0.004, max_spikes=50, t_max=0.2)
    small = sb.simulate(w, t_in, 0.01, 0.004, max_spikes=2, t_max=0.2)
    n = int(big.counts[0, 0])
    assert n > 2 and int(big.overflow[0, 0]) == 0
    assert int(small.counts[0, 0]) == 2 and int(small.overflow[0, 0]) == n - 2
    assert np.array_equal(small.times[0, 0], big.times[0, 0, :2])


@pytest.mark.parametrize("kwargs, word", [
    (dict(tau_s=-1.0), "tau_s"), (dict(theta=0.0), "theta"), (dict(delta_theta=-0.1), "delta_theta"),
    (dict(max_spikes=0), "max_spikes"), (dict(t_max=0), "t_max"), (dict(dt=-0.001), "dt"),
])
def test_bad_settings_name_the_argument(kwargs, word):
    args = dict(tau_s=0.01, theta=0.01)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        sb.simulate(np.ones((2, 3)), np.zeros((1, 3, 1)), **args)


def test_bad_times_name_the_argument():
    w = np.ones((2, 3))
    with pytest.raises(ValueError, match="in_times.*NaN"):
        sb.simulate(w, np.array([[[0.1], [np.nan], [0.2]]]), 0.01, 0.01)
    with pytest.raises(ValueError, match="in_times.*sorted"):
        sb.simulate(w, np.array([[[0.2, 0.1]] * 3]), 0.01, 0.01)
    with pytest.raises(ValueError, match="in_times.*3 inputs|in_times has 4"):
        sb.simulate(w, np.zeros((1, 4, 1)), 0.01, 0.01)
    with pytest.raises(ValueError, match="in_times.*batch"):
        sb.simulate(w, np.zeros((3, 1)), 0.01, 0.01)
    with pytest.raises(ValueError, match="weight"):
        sb.simulate(np.ones(3), np.zeros((1, 3, 1)), 0.01, 0.01)
    layer = sb.LIFDense(3, 2, sb.LIFParameters(0.01, 0.01), dtype=np.float64)
    with pytest.raises(ValueError, match="weight"):
        sb.LIFDense(3, 2, sb.LIFParameters(0.01, 0.01), weight=np.ones((3, 2)))
    out = layer.forward(SpikeTrains(np.zeros((2, 3, 1)), np.ones((2, 3), np.int32)))
    with pytest.raises(ValueError, match="grad_times"):
        layer.backward(np.zeros((2, 2, 3)))
    assert out.times.shape == (2, 2, 1)


def test_float32_exp_overflow_is_an_error_not_missing_spikes():
    """exp(t / tau_s) overflows float32 beyond ~88 tau_s: that must fail loudly, not drop spikes."""
    w = np.full((2, 3), 400.0)                  # u* = w tau / 4 = 0.2 per input, theta 0.3
    t = np.array([[[0.1], [0.1005], [0.101]]])
    ref = sb.simulate(w, t, 1e-3, 0.3, max_spikes=4)                 # float64: fine
    assert ref.counts.sum() > 0
    with pytest.raises(ValueError, match="in_times.*tau_s.*float32.*float64"):
        sb.simulate(w.astype(np.float32), t, 1e-3, 0.3, max_spikes=4)
    with pytest.raises(ValueError, match="t_max.*tau_s.*float32"):
        sb.LIFDense(3, 2, sb.LIFParameters(1e-3, 0.3, t_max=0.2), dtype=np.float32)
    layer = sb.LIFDense(3, 2, sb.LIFParameters(1e-3, 0.3), dtype=np.float32, weight=w.astype(np.float32))
    with pytest.raises(ValueError, match="input spikes.*float32"):
        layer.forward(SpikeTrains(t, np.ones((1, 3), np.int32)))


def test_grazing_threshold_keeps_gradients_finite():
    """A peak that touches theta within 1e-10 makes x = sqrt(b^2 - 4ac) -> 0 and 1/x blow up: the
    guard (X_GUARD) keeps the factors finite and bounded."""
    tau_s, theta = 0.05, 0.2
    tau = 2 * tau_s
    # one input at t = 0 with weight w: u(t) = w tau (e^{-t/tau} - e^{-t/tau_s}) peaks at w tau / 4
    w = np.array([[4 * theta / tau * (1 + 1e-10)]])
    sim = sb.simulate(w, np.zeros((1, 1, 1)), tau_s, theta, max_spikes=1)
    assert sim.counts[0, 0] == 1 and float(sim.x[0, 0, 0]) < 1e-4       # the grazing regime
    dw, dx = sb.backward(w, sim, np.ones_like(sim.times), tau_s, theta)
    assert np.all(np.isfinite(dw)) and np.all(np.isfinite(dx))
    assert np.abs(dw).max() < 1e6 and np.abs(dx).max() < 1e6


def test_layer_matches_functional_core_and_unpacks():
    rng = np.random.default_rng(5)
    layer = sb.LIFDense(10, 4, sb.LIFParameters(0.01, 0.01, max_spikes=3, t_max=0.2), seed=3, dtype=np.float64)
    t = np.sort(rng.uniform(0, 0.05, (2, 10, 1)), axis=2)
    out = layer.forward(SpikeTrains(t, np.ones((2, 10), np.int32)))
    times, counts = sb.simulate(layer.params["weight"], t, 0.01, 0.01, max_spikes=3, t_max=0.2)
    assert np.array_equal(out.times, times) and np.array_equal(out.counts, counts)
    out.validate("layer output")


def test_time_discretization():
    rng = np.random.default_rng(2)
    w = rng.uniform(-0.2, 1.5, (6, 15))
    t = np.sort(rng.uniform(0, 0.05, (2, 15, 1)), axis=2)
    dt = 0.001
    sim = sb.simulate(w, t, 0.01, 0.005, max_spikes=8, t_max=0.2, dt=dt)
    # inputs moved up to the grid (an exact multiple moves a full step)
    assert np.allclose(sim.in_used, t + (dt - np.fmod(t, dt)))
    assert np.allclose(sb.grid_up(np.array([0.0, 0.002, 0.0025]), dt), [0.001, 0.003, 0.003])
    ok = np.isfinite(sim.times)
    assert ok.sum() > 10
    # output = grid time strictly after the continuous one, within one step
    assert np.all((sim.times[ok] > sim.t_cont[ok]) & (sim.times[ok] - sim.t_cont[ok] <= dt * (1 + 1e-9)))
    assert np.allclose(np.round(sim.times[ok] / dt), sim.times[ok] / dt)
    # one-step refractory: discrete spikes of one neuron are distinct grid points
    d = np.diff(sim.times, axis=2)
    assert np.all(d[np.isfinite(d)] >= dt * (1 - 1e-9))
    # continuous simulation on the rounded inputs gives the same continuous times when no spike is refused
    ref = sb.simulate(w, sim.in_used, 0.01, 0.005, max_spikes=8, t_max=0.2)
    same = (ref.counts == sim.counts)
    assert same.mean() > 0.5
    assert np.allclose(np.where(np.isfinite(ref.times), ref.times, 0)[same],
                       np.where(np.isfinite(sim.t_cont), sim.t_cont, 0)[same])
    # backward treats rounding as identity: runs and returns finite grads of the right shapes
    G = np.where(ok, 1.0, 0.0)
    dw, dx = sb.backward(w, sim, G, 0.01, 0.005)
    assert dw.shape == w.shape and dx.shape == t.shape and np.isfinite(dw).all() and np.isfinite(dx).all()
