"""The BATS training step captured as a CUDA graph (snnkit/bats/graph.py) against the eager step,
and its event sort (kernels/bats_graph.cu) against the NumPy twin ``sort_events`` and the eager
CUDA sort, on fresh random inputs with ties, empty samples and more spikes than shared memory holds."""
import numpy as np
import pytest

from snnkit.spikes import SpikeTrains


def _times(rng, B, n_in, s_in, p_spike, levels=None, dtype=np.float32):
    """Sorted spike times [B, n_in, s_in], +inf padded; ``levels`` quantizes them (ties, as MNIST's
    256 intensities give)."""
    t = rng.random((B, n_in, s_in)) * 0.2
    if levels:
        t = np.round(t * levels) / levels
    t = np.where(rng.random((B, n_in, s_in)) < p_spike, t, np.inf)
    return np.sort(t, axis=2).astype(dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,n_in,s_in,p,levels", [
    (7, 100, 3, 0.3, 64),          # ties across inputs and slots
    (5, 800, 30, 0.03, None),      # a hidden layer's output: 24 000 slots, ~700 spikes
    (3, 3000, 2, 0.9, 255),        # > SORT_CAP spikes per sample: the global-memory path
    (4, 784, 1, 0.19, 255),        # the MNIST input layer
])
def test_capturable_sort_equals_numpy_twin_and_eager_cuda(cp, B, n_in, s_in, p, levels, dtype):
    from snnkit.bats import sort_events
    from snnkit.bats.graph import SORT_CAP, sort_events_capturable
    rng = np.random.default_rng([B, n_in, s_in])
    t = _times(rng, B, n_in, s_in, p, levels, dtype)
    t[0] = np.inf                                  # a sample without spikes
    if B > 2:
        t[2, :, 0] = 0.0                           # every input at t = 0: all tied
    tau_s = 0.13
    ref_t, ref_i, ref_a, ref_b, _ = sort_events(t, tau_s)            # NumPy: K = the most spikes
    e_t, e_i, e_a, e_b, _ = sort_events(cp.asarray(t), tau_s)        # eager CUDA (thrust argsort)
    g = [a.get() for a in sort_events_capturable(cp.asarray(t), tau_s)]
    counts = np.isfinite(t).reshape(B, -1).sum(axis=1)
    if p > 0.5:
        assert counts.max() > SORT_CAP
    NS = n_in * s_in
    for b in range(B):
        n = counts[b]
        np.testing.assert_array_equal(g[0][b, :n], ref_t[b, :n])
        np.testing.assert_array_equal(g[1][b, :n], ref_i[b, :n])
        # exp on the GPU vs NumPy's: float rounding; vs the eager CUDA gather: the same bits
        np.testing.assert_allclose(g[2][b, :n], ref_a[b, :n], rtol=4 * np.finfo(dtype).eps)
        np.testing.assert_allclose(g[3][b, :n], ref_b[b, :n], rtol=4 * np.finfo(dtype).eps)
        for k in range(4):
            np.testing.assert_array_equal(g[k][b, :n], [e_t, e_i, e_a, e_b][k][b, :n].get())
        if n < NS:
            assert np.isinf(g[0][b, n]) and g[2][b, n] == 0 and g[3][b, n] == 0


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,n_in,s_in,N,S,dt,p", [
    (9, 800, 30, 10, 30, None, 0.03),      # the output layer: weights staged, ~700 events, many chunks
    (6, 120, 2, 200, 5, None, 0.4),        # 50 tiles of 4 neurons, weights staged
    (5, 50, 3, 301, 4, 0.002, 0.5),        # 76 tiles (the last one neuron wide), weights staged, on a grid
    (5, 50, 3, 301, 4, 0.007, 0.5),        # a grid whose last step ends past t_max = 0.2
    (4, 2100, 1, 6, 5, None, 0.4),         # weights read from global memory (2100 x 4 values > 32 KiB)
    (4, 784, 1, 800, 30, None, 0.19),      # the hidden layer
])
def test_staged_forward_equals_plain_forward(cp, B, n_in, s_in, N, S, dt, p, dtype):
    """bats_forward_staged against bats_forward on the same event lists (the eager sort's, fully
    padded, and the capturable sort's, ending at a sentinel): every output bit-identical, with
    spikes and overflow exercised."""
    from snnkit.bats import grid_up, sort_events
    from snnkit.bats.graph import simulate_staged, sort_events_capturable
    from snnkit.bats.simulate import _simulate_cuda
    rng = np.random.default_rng([B, n_in, N])
    t = cp.asarray(_times(rng, B, n_in, s_in, p, 255, dtype))
    t[1] = cp.inf                                   # a sample without input
    w = cp.asarray(rng.uniform(-1, 1, (N, n_in)).astype(dtype))
    theta = 0.2                                     # a quarter to a half of the neurons fire (NumPy twin)
    used = grid_up(t, dt) if dt is not None else t
    for ev in (sort_events(used, 0.13)[:4], sort_events_capturable(used, 0.13)):
        args = (w, *ev, 0.13, theta, theta, S, 0.2, dt)
        ref, got = _simulate_cuda(*args), simulate_staged(*args)
        for name, a, b in zip(("times", "t_cont", "x", "counts", "overflow"), ref, got):
            assert cp.array_equal(a, b), f"{name} differs"
    counts, overflow = ref[3], ref[4]
    assert int(counts.sum()) > 0 and int((counts == 0).sum()) > 0


def _setup(cp, dtype, dt, seed=3):
    from snnkit.bats import LIFDense, LIFParameters, Network, SpikeCountLoss
    from snnkit.nn import Adam
    nets = []
    for _ in range(2):
        net = Network(LIFDense(120, 64, LIFParameters(0.13, 0.2, max_spikes=10, t_max=0.2, dt=dt), seed=seed,
                               dtype=dtype),
                      LIFDense(64, 10, LIFParameters(0.13, 1.3, max_spikes=8, t_max=0.2, dt=dt), seed=seed + 1,
                               dtype=dtype))
        nets.append((net, SpikeCountLoss(15, 3), Adam(net, lr=0.003)))
    return nets


def _eager_step(net, loss, opt, x, y):
    out = net.forward(x)
    v, g = loss.value_and_grad(out, y)
    net.backward(g)
    opt.step()
    return float(v)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,dt,staged", [(np.float32, None, None), (np.float64, None, True),
                                             (np.float32, 0.002, None), (np.float32, None, False),
                                             (np.float32, 0.007, None)])
def test_graph_step_equals_eager_step(cp, dtype, dt, staged):
    """Eight steps (batch 40 x3, 17 x3: a second key, then 40 x2: the first graph again)
    from the same weights on the same fresh random batches: the same loss, spike trains and
    weights, bit for bit; the graph was captured and replayed, not run eagerly throughout."""
    from snnkit.bats import mark_checked
    from snnkit.bats.graph import GraphStep
    (ne, le, oe), (ng, lg, og) = _setup(cp, dtype, dt)
    step = GraphStep(ng, lg, og, staged_forward=staged)
    rng = np.random.default_rng(11)
    for i, B in enumerate([40, 40, 40, 17, 17, 17, 40, 40]):
        t = cp.asarray(_times(rng, B, 120, 2, 0.35, 255, dtype))
        y = rng.integers(0, 10, B)
        x = mark_checked(SpikeTrains(t, cp.asarray(np.isfinite(t.get()).sum(2).astype(np.int32)), None))
        ve = _eager_step(ne, le, oe, x, y)
        vg = float(step(x, y))
        assert vg == ve, f"step {i}: loss {vg} (graph) != {ve} (eager)"
        for k, (a, b) in enumerate(zip(ne.layers, ng.layers)):
            assert cp.array_equal(a.last.times, b.last.times), f"step {i}, layer {k}: spike times differ"
            assert cp.array_equal(a.last.counts, b.last.counts) and cp.array_equal(a.last.overflow, b.last.overflow)
            assert cp.array_equal(a.grads["weight"], b.grads["weight"]), f"step {i}, layer {k}: dW differs"
            assert cp.array_equal(a.params["weight"], b.params["weight"]), f"step {i}, layer {k}: weights differ"
    assert oe.t == og.t == 8
    assert step.captures == 2 and step.replays == 6 and step.eager == 2, step
    assert sum(int(l.last.counts.sum()) for l in ng.layers) > 0          # the test exercised spikes


@pytest.mark.gpu
def test_graph_step_follows_replaced_weights_and_lr(cp):
    """A weight array replaced (as load_state_dict does) is a new key: never a replay of a graph
    that writes the old array; a changed learning rate reaches the replay."""
    from snnkit.bats import mark_checked
    from snnkit.bats.graph import GraphStep
    (ne, le, oe), (ng, lg, og) = _setup(cp, np.float32, None, seed=8)
    step = GraphStep(ng, lg, og)
    rng = np.random.default_rng(2)
    for i in range(6):
        if i == 3:
            for a, b in zip(ne.layers, ng.layers):
                a.params["weight"] = a.params["weight"] * 0.9
                b.params["weight"] = b.params["weight"] * 0.9
        if i == 4:
            oe.lr = og.lr = 0.01
        t = cp.asarray(_times(rng, 30, 120, 2, 0.35, None))
        y = rng.integers(0, 10, 30)
        x = mark_checked(SpikeTrains(t, cp.asarray(np.isfinite(t.get()).sum(2).astype(np.int32)), None))
        assert float(step(x, y)) == _eager_step(ne, le, oe, x, y), f"step {i}"
        for a, b in zip(ne.layers, ng.layers):
            assert cp.array_equal(a.params["weight"], b.params["weight"]), f"step {i}"
    assert step.eager == 2 and step.captures == 2


def test_graph_step_refuses_what_it_cannot_capture(numpy_backend):
    """NumPy weights, another loss or optimizer, another layer type: a TypeError naming the fix."""
    from snnkit.bats import LIFDense, LIFParameters, Network, SpikeCountLoss, TTFSCrossEntropy
    from snnkit.bats.graph import GraphStep
    from snnkit.nn import SGD, Adam
    n = LIFParameters(0.13, 0.2)
    net = Network(LIFDense(4, 3, n, seed=0), LIFDense(3, 2, n, seed=1))
    with pytest.raises(TypeError, match="CuPy backend"):
        GraphStep(net, SpikeCountLoss(), Adam(net))
    with pytest.raises(TypeError, match="SpikeCountLoss"):
        GraphStep(net, TTFSCrossEntropy(), Adam(net))
    with pytest.raises(TypeError, match="Adam"):
        GraphStep(net, SpikeCountLoss(), SGD(net, lr=0.1))
    with pytest.raises(ValueError, match="layers of net"):
        GraphStep(net, SpikeCountLoss(), Adam(Network(LIFDense(4, 3, n, seed=0))))
    with pytest.raises(TypeError, match="LIFDense"):
        GraphStep([1, 2], SpikeCountLoss(), Adam(net))


def test_sort_cap_declared_for_the_nvcc_check_matches_python():
    """kernels/bats_graph.cu gets SORT_CAP and FWD_WARPS from Python as -D; the values its compile-options line
    declares (for tests/test_kernels.py's nvcc check) must be the same."""
    from pathlib import Path

    import snnkit
    from snnkit.bats.graph import SORT_CAP
    from snnkit.kernels import kernel_path
    src = Path(snnkit.__file__).resolve().parent.parent / "kernels" / "bats_graph.cu"   # this checkout's
    src = src if src.is_file() else kernel_path("bats_graph.cu")                      # an installed wheel's
    line = next(l for l in src.read_text().splitlines() if "compile-options:" in l)
    assert f"-DBATS_SORT_CAP={SORT_CAP}" in line.split()
    from snnkit.bats.graph import FWD_WARPS
    assert f"-DBATS_FWD_WARPS={FWD_WARPS}" in line.split()
