"""ConvLIF: the convolution is its dense equivalent (expanded weight matrix) in forward and backward,
gradients by finite differences, pooling + conv chains, bad input, and (GPU) CuPy against NumPy."""
import numpy as np
import pytest

from snnkit.bats.backward import backward as dense_backward
from snnkit.bats import LIFParameters
from snnkit.bats.conv import ConvLIF, fold_patches, gather_patches
from snnkit.bats.pool import SpikePool2d
from snnkit.bats.simulate import simulate
from snnkit.spikes import SpikeTrains

from gradcheck import fd_check

NEURON = dict(tau_s=1.0, theta=0.6, delta_theta=0.6, max_spikes=3, t_max=8.0)


def random_map(rng, B, H, W, C, S, p_spike=0.7, t_hi=4.0, dtype=np.float64):
    N = H * W * C
    counts = rng.binomial(S, p_spike, size=(B, N)).astype(np.int32)
    times = np.sort(rng.uniform(0.0, t_hi, size=(B, N, S)), axis=2)
    times = np.where(np.arange(S) < counts[:, :, None], times, np.inf).astype(dtype)
    return SpikeTrains(times, counts)


def expanded_weight(w, input_shape):
    """The dense [P * C_out, H * W * C_in] matrix of a valid, stride-1 convolution (channels last)."""
    C_out, fx, fy, C_in = w.shape
    H, W, _ = input_shape
    Ho, Wo = H - fx + 1, W - fy + 1
    E = np.zeros((Ho * Wo * C_out, H * W * C_in), w.dtype)
    for x in range(Ho):
        for y in range(Wo):
            for c in range(C_out):
                row = (x * Wo + y) * C_out + c
                for i in range(fx):
                    for j in range(fy):
                        for k in range(C_in):
                            E[row, ((x + i) * W + (y + j)) * C_in + k] = w[c, i, j, k]
    return E


def fold_expanded(E_grad, w_shape, input_shape):
    """Sum an expanded-matrix gradient back onto the shared kernel (the conv's weight gradient)."""
    C_out, fx, fy, C_in = w_shape
    H, W, _ = input_shape
    Ho, Wo = H - fx + 1, W - fy + 1
    g = np.zeros(w_shape)
    for x in range(Ho):
        for y in range(Wo):
            for c in range(C_out):
                row = (x * Wo + y) * C_out + c
                for i in range(fx):
                    for j in range(fy):
                        for k in range(C_in):
                            g[c, i, j, k] += E_grad[row, ((x + i) * W + (y + j)) * C_in + k]
    return g


def make_conv(shape=(6, 5, 2), channels=3, ks=(3, 2), seed=0, dt=None, **kw):
    neuron = LIFParameters(**dict(NEURON, dt=dt, **kw))
    return ConvLIF(shape, channels, ks, neuron, init=(-0.2, 1.0), seed=seed, dtype=np.float64)


def test_gather_and_fold_are_adjoint():
    rng = np.random.default_rng(0)
    shape, ks, B, S = (5, 6, 3), (2, 3), 2, 2
    a = rng.normal(size=(B, 5 * 6 * 3, S))
    cols = gather_patches(a, shape, ks)
    assert cols.shape == (B * 4 * 4, 2 * 3 * 3, S)
    y = rng.normal(size=cols.shape)
    assert np.isclose((cols * y).sum(), (a * fold_patches(y, B, shape, ks)).sum())
    # patch of position (x=1, y=2) of sample 1, entry (i=1, j=0, k=2) is input (2, 2, 2)
    np.testing.assert_array_equal(cols[1 * 16 + 1 * 4 + 2, (1 * 3 + 0) * 3 + 2], a[1, (2 * 6 + 2) * 3 + 2])


@pytest.mark.parametrize("dt", [None, 0.25])
def test_forward_and_backward_equal_expanded_dense(dt):
    rng = np.random.default_rng(1)
    conv = make_conv(dt=dt)
    sp = random_map(rng, 4, 6, 5, 2, 2)
    out = conv.forward(sp)
    assert out.times.shape[:2] == (4, 4 * 4 * 3)
    assert out.n_spikes() > 20, "the test needs a layer that fires"
    E = expanded_weight(conv.params["weight"], conv.input_shape)
    ref = simulate(E, sp.times, dt=dt, **NEURON)
    np.testing.assert_allclose(out.times, ref.times, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(out.counts, ref.counts)
    np.testing.assert_array_equal(out.overflow, ref.overflow)
    if dt is not None:
        np.testing.assert_allclose(conv.continuous.times, ref.t_cont, rtol=1e-9, atol=1e-12)
        fin = np.isfinite(out.times)
        assert np.all(np.abs(np.round(out.times[fin] / dt) * dt - out.times[fin]) < 1e-9)   # on the grid
    g = np.where(np.isfinite(out.times), rng.normal(size=out.times.shape), 0.0)
    g_in = conv.backward(g)
    dE, dx = dense_backward(E, ref, g, NEURON["tau_s"], NEURON["theta"], NEURON["delta_theta"])
    np.testing.assert_allclose(conv.grads["weight"], fold_expanded(dE, conv.params["weight"].shape,
                                                                   conv.input_shape), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g_in, dx, rtol=1e-8, atol=1e-10)


def _loss_and_grads(layer, sp, g):
    out = layer.forward(sp)
    L = float(np.sum(np.where(np.isfinite(out.times), out.times, 0.0) * g))
    return L, out


def test_finite_differences_weights_and_inputs():
    rng = np.random.default_rng(3)
    conv = make_conv(shape=(5, 5, 2), channels=2, ks=(3, 3), seed=4)
    sp = random_map(rng, 2, 5, 5, 2, 2)
    out = conv.forward(sp)
    g = np.where(np.isfinite(out.times), rng.normal(size=out.times.shape), 0.0)
    g_in = conv.backward(g)
    dw = conv.grads["weight"].copy()
    times = sp.times.copy()

    def f():
        L, o = _loss_and_grads(conv, SpikeTrains(times, sp.counts), g)
        return L if np.array_equal(o.counts, out.counts) else None   # a spike appeared/vanished: no derivative

    w = conv.params["weight"]
    fd_check(f, [w], [dw], rtol=1e-5, floor=1e-3, entries=[list(np.ndindex(w.shape))[::3]], min_checked=8)
    b, n, s = np.nonzero(np.isfinite(sp.times))
    fd_check(f, [times], [g_in], rtol=1e-5, floor=1e-3, entries=[list(zip(b, n, s))[::4]], min_checked=8)


def test_conv_pool_conv_chain_gradient():
    """Errors cross pooling and a second conv exactly: finite differences through the whole chain."""
    rng = np.random.default_rng(5)
    c1 = make_conv(shape=(6, 6, 1), channels=2, ks=(3, 3), seed=1, theta=0.5, delta_theta=0.5)
    pool = SpikePool2d(c1.output_shape)
    c2 = ConvLIF(pool.output_shape, 2, 2, LIFParameters(**NEURON), init=(0.0, 1.5), seed=2, dtype=np.float64)
    sp = random_map(rng, 2, 6, 6, 1, 1, p_spike=0.9, t_hi=2.0)

    def run():
        return c2.forward(pool.forward(c1.forward(sp)))
    out = run()
    assert out.n_spikes() > 0
    g = np.where(np.isfinite(out.times), rng.normal(size=out.times.shape), 0.0)
    c1.backward(pool.backward(c2.backward(g)))
    dw = c1.grads["weight"].copy()
    c1_counts = c1.last.counts.reshape(2, -1).copy()

    def f():
        o = run()
        same = np.array_equal(o.counts, out.counts) and np.array_equal(c1.forward(sp).counts, c1_counts)
        return float(np.sum(np.where(np.isfinite(o.times), o.times, 0) * g)) if same else None

    w = c1.params["weight"]
    fd_check(f, [w], [dw], rtol=1e-5, floor=1e-3, entries=[list(np.ndindex(w.shape))], min_checked=5)
    assert np.abs(dw).max() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_shape"):
        ConvLIF((4, 4), 2, 3, LIFParameters(**NEURON))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvLIF((4, 4, 1), 2, 5, LIFParameters(**NEURON))
    with pytest.raises(ValueError, match="channels"):
        ConvLIF((4, 4, 1), 0, 3, LIFParameters(**NEURON))
    with pytest.raises(ValueError, match="theta"):
        LIFParameters(tau_s=1.0, theta=-1.0)
    with pytest.raises(TypeError, match="LIFParameters"):
        ConvLIF((4, 4, 1), 2, 3, dict(NEURON))
    conv = ConvLIF((4, 4, 1), 2, 3, LIFParameters(**NEURON))
    with pytest.raises(ValueError, match="spikes.times"):
        conv.forward(random_map(np.random.default_rng(0), 1, 4, 4, 2, 1))
    conv.forward(random_map(np.random.default_rng(0), 1, 4, 4, 1, 1, dtype=np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        conv.backward(np.zeros((1, 7, 3), np.float32))


@pytest.mark.gpu
@pytest.mark.parametrize("B,shape,C_out,ks,S_in,dt", [(3, (8, 8, 2), 4, (3, 3), 2, None),
                                                      (2, (12, 12, 3), 5, (5, 5), 1, 0.01),
                                                      (100, (6, 6, 1), 3, (3, 3), 1, None)])
def test_gpu_matches_numpy(cp, B, shape, C_out, ks, S_in, dt):
    """Fresh random inputs; the last case has B * positions = 1600 dense samples (> 1024, no batch
    cap), the middle one 128 samples of 75 inputs on a 10 ms grid. The float32 CUDA path (as in
    training) against the float64 NumPy reference."""
    rng = np.random.default_rng(B)
    kw = dict(neuron=LIFParameters(tau_s=0.13, theta=0.3, delta_theta=0.3, max_spikes=3, t_max=0.2, dt=dt),
              init=(-0.3, 1.0), seed=B)
    ref, gpu = ConvLIF(shape, C_out, ks, dtype=np.float64, **kw), ConvLIF(shape, C_out, ks, **kw)
    w = cp.asnumpy(gpu.params["weight"])                      # same draw, one copy per device:
    ref.params["weight"] = w.astype(np.float64)               # the reference lives on the host
    ref.grads["weight"] = np.zeros_like(ref.params["weight"])
    sp = random_map(rng, B, *shape, S_in, t_hi=0.1, dtype=np.float32)
    o_ref = ref.forward(SpikeTrains(sp.times.astype(np.float64), sp.counts))
    o_gpu = gpu.forward(SpikeTrains(cp.asarray(sp.times), cp.asarray(sp.counts)))
    assert o_ref.n_spikes() > 0
    np.testing.assert_array_equal(cp.asnumpy(o_gpu.counts), o_ref.counts)
    fin = np.isfinite(o_ref.times)
    assert np.array_equal(np.isfinite(cp.asnumpy(o_gpu.times)), fin)
    dts = np.abs(cp.asnumpy(o_gpu.times)[fin] - o_ref.times[fin])
    if dt is not None:          # float32 rounding may put a crossing that sits on a grid point one step on
        on_other_step = dts > dt / 2
        assert on_other_step.sum() <= max(1, 1e-3 * fin.sum()), int(on_other_step.sum())
        dts = dts[~on_other_step]
    e_t = dts.max()
    g = np.where(fin, rng.normal(size=o_ref.times.shape), 0)
    gi_ref, gi_gpu = ref.backward(g), gpu.backward(cp.asarray(g, dtype=cp.float32))
    e_i = np.abs(cp.asnumpy(gi_gpu) - gi_ref).max() / (np.abs(gi_ref).max() + 1e-12)
    e_w = (np.abs(cp.asnumpy(gpu.grads["weight"]) - ref.grads["weight"]).max()
           / (np.abs(ref.grads["weight"]).max() + 1e-12))
    print(f"\nconv GPU f32 vs NumPy f64 B={B} {shape} C_out={C_out} k={ks} dt={dt}: {int(fin.sum())} spikes, "
          f"max |dt| {e_t:.2e} s, dL/dt_in err/max {e_i:.2e}, dW err/max {e_w:.2e}")
    assert e_t <= 2e-6                      # 1e-5 of t_max
    assert e_i < 2e-5 and e_w < 2e-5


@pytest.mark.brian2
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_conv_matches_brian2_through_its_dense_equivalent(numpy_backend, seed):
    """Brian2 (exact integration, 1 us grid) runs the expanded dense layer; the conv layer's spikes
    must match it: identical counts, k-th spike within 2 (k + 1) us (Brian2's grid error)."""
    from snnkit.reference.brian2_bats import run_dense
    DT, TAU_S, THETA, DURATION = 1e-6, 0.005, 0.004, 0.02
    rng = np.random.default_rng(seed)
    conv = ConvLIF((6, 6, 2), 3, (3, 3), LIFParameters(tau_s=TAU_S, theta=THETA, max_spikes=32, t_max=DURATION),
                   init=(-0.2, 1.2), seed=seed, dtype=np.float64)
    B = 3
    t_in = np.where(rng.random((B, 72, 1)) < 0.8, np.round(rng.uniform(0, 0.015, (B, 72, 1)) / DT) * DT, np.inf)
    out = conv.forward(SpikeTrains(t_in, np.isfinite(t_in).sum(axis=2).astype(np.int32)))
    assert int(out.overflow.sum()) == 0
    assert out.counts.sum() > out.counts.size, "the case should be in a multi-spike regime"
    trains = run_dense(expanded_weight(conv.params["weight"], conv.input_shape), t_in, TAU_S, THETA,
                       duration=DURATION, dt=DT)
    for b in range(B):
        for n in range(conv.n_out):
            ours = out.times[b, n, :out.counts[b, n]]
            ref = np.asarray(trains[b][n])
            assert len(ours) == len(ref), (b, n, ours, ref)
            assert np.all(np.abs(ref - ours) <= 2 * (np.arange(len(ours)) + 1) * DT), (b, n, ours, ref)
