"""S3GD CUDA kernels against their NumPy twins on fresh random inputs (several sizes, batch > 1024),
and the whole network's dense and sparse gradients on CuPy against NumPy."""
import numpy as np
import pytest

pytestmark = pytest.mark.gpu

SIZES = [(3, 17, 5, 4), (1100, 7, 33, 9), (64, 60, 100, 50), (2, 1100, 6, 37)]     # (B, T, N_in, N)
# the last: 35 chunks of 32 steps, more than a compaction block has lanes (16: a thread owns three)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


def _close(a, b, dtype, msg="", sums=False):
    """``sums``: entries are long sums whose order differs (kernel loop vs NumPy), so float32
    round-off is judged against the largest magnitude."""
    tol = dict(TOL[dtype])
    if sums and dtype == np.float32:
        tol["atol"] = 1e-5 * float(np.abs(b).max(initial=0.0))
    np.testing.assert_allclose(a, b, err_msg=msg, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
def test_forward_and_scans(cp, size, dtype):
    from snnkit.s3gd import lif, scan, cuda
    B, T, _, N = size
    r = np.random.default_rng(B * T)
    h = r.normal(0.3, 0.6, (B, T, N)).astype(dtype)
    V, S = lif.lif_simulate(h, 0.9, 1.0)
    Vg, Sg = cuda.lif_forward(cp.asarray(h), 0.9, 1.0)
    np.testing.assert_array_equal(cp.asnumpy(Sg), S)         # --fmad=false: bit-identical
    np.testing.assert_array_equal(cp.asnumpy(Vg), V)
    assert 0.01 < S.mean() < 0.9
    x = r.normal(size=(B, T, N)).astype(dtype)
    _close(cp.asnumpy(cuda.scan_forward(cp.asarray(x), 0.8, 0.2)), scan.scan_forward(x, 0.8, 0.2), dtype)
    _close(cp.asnumpy(cuda.scan_backward(cp.asarray(x), 0.8, 0.2)), scan.scan_backward(x, 0.8, 0.2), dtype)


@pytest.mark.parametrize("band", [None, 0.2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
def test_dense_backward_kernel(cp, size, dtype, band):
    from snnkit.s3gd import lif
    B, T, _, N = size
    r = np.random.default_rng(B + T)
    V = r.normal(1.0, 0.3, (B, T, N)).astype(dtype)
    gs = r.normal(size=(B, T, N)).astype(dtype)
    rr = r.normal(size=(B, N)).astype(dtype)
    ref = lif.lif_delta_dense(gs, V, 0.9, 1.0, 100.0, band, rr)
    got = lif.lif_delta_dense(cp.asarray(gs), cp.asarray(V), 0.9, 1.0, 100.0, band, cp.asarray(rr))
    _close(cp.asnumpy(got), ref, dtype)


@pytest.mark.parametrize("delta", [1e-9, 0.05, 0.3, 1e9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
def test_sparse_kernels(cp, size, dtype, delta):
    from snnkit.s3gd import sparse
    B, T, N_in, N = size
    if delta == 1e9 and (B * T * N_in * T * N > 2e9 or T * N_in * T * N > 1e8):
        pytest.skip("full active set too large for the NumPy pairwise twin")
    r = np.random.default_rng(B * 7 + T)
    V = r.normal(1.0, 0.4, (B, T, N)).astype(dtype)
    Vin = r.normal(1.0, 0.4, (B, T, N_in)).astype(dtype)
    trace = r.random((B, T, N_in)).astype(dtype)
    W = r.normal(size=(N_in, N)).astype(dtype)
    A = sparse.active_set(V, 1.0, delta)
    Ag = sparse.active_set(cp.asarray(V), 1.0, delta)
    for f in ("offsets", "b", "t", "j", "v"):
        np.testing.assert_array_equal(cp.asnumpy(getattr(Ag, f)), getattr(A, f), err_msg=f)
    gs = r.normal(size=A.n).astype(dtype)
    rr = r.normal(size=(B, N)).astype(dtype)
    g = sparse.entry_grad(gs, A, rr, 1.0, 100.0)
    _close(cp.asnumpy(sparse.entry_grad(cp.asarray(gs), Ag, cp.asarray(rr), 1.0, 100.0)), g, dtype, "g")
    dW = sparse.sparse_weight_grad(g, A, trace)
    dWg = sparse.sparse_weight_grad(cp.asarray(g), Ag, cp.asarray(trace))
    _close(cp.asnumpy(dWg), dW, dtype, "weight grad", sums=True)
    Q = sparse.active_set(Vin, 1.0, 0.3)
    Qg = sparse.active_set(cp.asarray(Vin), 1.0, 0.3)
    gi = sparse.sparse_input_grad(g, A, Q, W, 0.9)
    gig = sparse.sparse_input_grad(cp.asarray(g), Ag, Qg, cp.asarray(W), 0.9)
    _close(cp.asnumpy(gig), gi, dtype, "input grad", sums=True)


@pytest.mark.parametrize("stage", [(0, 0), (10**9, 0), (0, 10**9)])
def test_sparse_input_grad_with_and_without_shared_staging(cp, monkeypatch, stage):
    """The input-gradient kernel reads beta^n and W's rows from shared memory when they fit (the
    SHD sizes do) and from global memory otherwise: both ways give NumPy's values."""
    from snnkit.s3gd import cuda, sparse
    monkeypatch.setattr(cuda, "IG_STAGE_BYTES", stage)
    for B, T, N_in, N in ((3, 40, 30, 500), (5, 70, 9, 33)):
        r = np.random.default_rng(N)
        V = r.normal(1.0, 0.4, (B, T, N))
        A, Ag = sparse.active_set(V, 1.0, 0.05), sparse.active_set(cp.asarray(V), 1.0, 0.05)
        Vin = r.normal(1.0, 0.4, (B, T, N_in))
        Q, Qg = sparse.active_set(Vin, 1.0, 0.3), sparse.active_set(cp.asarray(Vin), 1.0, 0.3)
        g, W = r.normal(size=A.n), r.normal(size=(N_in, N))
        got = sparse.sparse_input_grad(cp.asarray(g), Ag, Qg, cp.asarray(W), 0.9)
        _close(cp.asnumpy(got), sparse.sparse_input_grad(g, A, Q, W, 0.9), np.float64, f"{stage} {N}")


@pytest.mark.parametrize("sparse_mode", [False, True])
@pytest.mark.parametrize("readout", ["max", "sum"])
@pytest.mark.parametrize("B", [5, 1100])
def test_network_gradients_gpu_vs_cpu(cp, B, readout, sparse_mode):
    from snnkit.s3gd import Network
    kw = dict(beta_out=0.85, delta=0.2, sparse=sparse_mode, readout=readout, seed=3,
              dtype=np.float64, weight_scale=4.0)
    net_g = Network(20, 16, 4, 0.9, **kw)
    r = np.random.default_rng(B)
    x = (r.random((B, 25, 20)) < 0.15).astype(np.float64)
    y = r.integers(0, 4, B)
    net_c = Network(20, 16, 4, 0.9, **kw)
    for lc, lg in zip(net_c.layers, net_g.layers):
        _to_numpy(cp, lc, lg)
    out = []
    for net, xx, yy in ((net_c, x, y), (net_g, cp.asarray(x), cp.asarray(y))):
        loss = net.loss()
        v, g = loss(net.forward(xx), yy)
        net.backward(g)
        out.append((v, [cp.asnumpy(l.grads["weight"]) if hasattr(l.grads["weight"], "get")
                        else l.grads["weight"] for l in net.layers],
                    [float(cp.asnumpy(s).mean()) for s in net.spikes()]))
    (vc, gc, sc), (vg, gg, sg) = out
    assert sc == sg and min(sc) > 0.005
    assert np.isclose(vc, vg, rtol=1e-10)
    for a, b in zip(gg, gc):
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["max", "sum"])
def test_readout_and_regularizer_kernels(cp, mode, dtype):
    """The one-kernel readout adjoint and regularizer gradient against the NumPy expressions."""
    from snnkit.s3gd import LeakyReadout
    from snnkit.s3gd.loss import ActivityRegularizer
    B, T, N, C = 1100, 37, 24, 5
    r = np.random.default_rng(11)
    s = (r.random((B, T, N)) < 0.2).astype(dtype)
    gl = r.normal(size=(B, C)).astype(dtype)
    ro_c = LeakyReadout(N, C, 0.85, mode, seed=1, dtype=dtype)
    ro_g = LeakyReadout(N, C, 0.85, mode, seed=1, dtype=dtype)
    _to_numpy(cp, ro_c, ro_g)
    ro_c.forward(s)
    ro_g.forward(cp.asarray(s))
    ro_c.backward(gl, need_input_grad=False)
    ro_g.backward(cp.asarray(gl), need_input_grad=False)
    _close(cp.asnumpy(ro_g.adjoint), ro_c.adjoint, dtype, "e")
    _close(cp.asnumpy(ro_g.grads["weight"]), ro_c.grads["weight"], dtype, "dW", sums=True)
    counts = r.integers(0, 3, (B, 700)).astype(dtype) * (r.random((B, 700)) < 0.5)
    counts[:7] = 0                                  # rows under f_low everywhere and over f_up
    counts[7:20] = 5
    reg = ActivityRegularizer(lambda_up=0.3, f_up=1.0, lambda_low=50.0, f_low=0.5)
    np.testing.assert_array_equal(cp.asnumpy(reg.grad_from_counts(cp.asarray(counts))), reg.grad_from_counts(counts))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 17, 5, 4), (128, 500, 400, 20), (7, 9, 70, 45), (1100, 3, 33, 1)])
def test_readout_weight_grad_kernel(cp, shape, dtype):
    """dW = S^T e by our two kernels (row slices, then their sums) against NumPy's GEMM, for sparse
    spikes, dense non-binary inputs and C above one class tile (45 > 32)."""
    from snnkit.s3gd import cuda
    B, T, N, C = shape
    r = np.random.default_rng(B + C)
    for s in ((r.random((B, T, N)) < 0.01).astype(dtype), r.normal(size=(B, T, N)).astype(dtype)):
        e = r.normal(size=(B, T, C)).astype(dtype)
        got = cp.asnumpy(cuda.readout_weight_grad(cp.asarray(s), cp.asarray(e)))
        _close(got, s.reshape(B * T, N).T @ e.reshape(B * T, C), dtype, str(shape), sums=True)


def _to_numpy(cp, layer, like):
    """Make ``layer`` (built on the GPU backend) a NumPy twin of ``like``: its weights a host copy,
    its gradient a host array of their shape (backward writes gradients in place, so they must
    live where the layer computes)."""
    layer.params["weight"] = cp.asnumpy(like.params["weight"])
    layer.grads["weight"] = np.zeros_like(layer.params["weight"])


def _net_pair(cp, B, readout, seed=5):
    from snnkit.s3gd import Network
    kw = dict(beta_out=0.85, delta=0.2, sparse=True, readout=readout, seed=seed, dtype=np.float64,
              weight_scale=4.0)
    net_g, net_c = Network(20, 16, 4, 0.9, **kw), Network(20, 16, 4, 0.9, **kw)
    for lc, lg in zip(net_c.layers, net_g.layers):
        _to_numpy(cp, lc, lg)
    return net_c, net_g


def _step(net, x, y):
    v, g = net.loss()(net.forward(x), y)
    net.backward(g)
    return [np.asarray(l.grads["weight"].get() if hasattr(l.grads["weight"], "get") else l.grads["weight"])
            for l in net.layers]


@pytest.mark.parametrize("readout", ["max", "sum"])
def test_deferred_sparse_backward_over_steps_and_overflow(cp, readout):
    """After the first step the GPU sparse backward sizes its entry arrays from earlier counts and
    waits for the GPU only at its end. Over steps whose activity rises (more entries than the
    arrays hold: overflow, redone) and falls, the gradients equal NumPy's every step, and the sets
    end exact (cut to their counts, equal to NumPy's)."""
    from snnkit.s3gd.sparse import CAPACITY_MARGIN, MIN_CAPACITY
    net_c, net_g = _net_pair(cp, 700, readout)
    r = np.random.default_rng(9)
    got, expected, caps = [], [], [None, None]
    for step, rate in enumerate([0.005, 0.005, 0.05, 0.05, 0.02, 0.15]):
        x = (r.random((700, 25, 20)) < rate).astype(np.float64)
        y = r.integers(0, 4, 700)
        if step == 4:                                   # force an overflow on a quiet step as well
            for h in net_g.hidden:
                h.compaction.capacities = {k: 3 for k in h.compaction.capacities}
            caps = [3, 3]
        gc = _step(net_c, x, y)
        before = net_g.overflows
        gg = _step(net_g, cp.asarray(x), cp.asarray(y))
        got.append(net_g.overflows - before)
        ns = [h.compaction.active.n for h in net_c.hidden]        # the rule, replayed on NumPy's counts
        expected.append(int(any(c is not None and n > c for n, c in zip(ns, caps))))
        caps = [max(c or 0, min(700 * 25 * 16, max(MIN_CAPACITY, int(CAPACITY_MARGIN * n)))) for n, c in zip(ns, caps)]
        for a, b in zip(gg, gc):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"step {step}")
        for hc, hg in zip(net_c.hidden, net_g.hidden):
            Ac, Ag = hc.compaction.active, hg.compaction.active
            assert not Ag.pending and not Ag.overflowed and Ag.n == Ac.n
            for f in ("offsets", "b", "t", "j", "v"):
                np.testing.assert_array_equal(cp.asnumpy(getattr(Ag, f)), getattr(Ac, f), err_msg=f"{step} {f}")
    assert got == expected, (got, expected)
    assert expected[0] == 0 and expected[4] == 1 and sum(expected) >= 2   # rising activity overflows too
    assert [h.compaction.capacities for h in net_g.hidden] == [{(700, 25, 16): c} for c in caps]


def test_pending_set_refuses_host_questions_until_settled(cp):
    from snnkit.s3gd import sparse
    V = cp.asarray(np.random.default_rng(2).normal(1.0, 0.3, (40, 30, 50)))
    exact = sparse.active_set(V, 1.0, 0.1)
    A, = sparse.active_sets([(V, 1.0, 0.1)], capacities=[exact.n + 100])
    assert A.pending and A.capacity == exact.n + 100
    with pytest.raises(RuntimeError, match="settle"):
        A.n
    with pytest.raises(RuntimeError, match="settle"):
        A.gather(V)
    assert sparse.settle([A]) == [exact.n] and not A.pending and A.n == exact.n
    for f in ("offsets", "b", "t", "j", "v"):
        np.testing.assert_array_equal(cp.asnumpy(getattr(A, f)), cp.asnumpy(getattr(exact, f)), err_msg=f)
    small, = sparse.active_sets([(V, 1.0, 0.1)], capacities=[exact.n // 2])
    assert sparse.settle([small]) == [exact.n] and small.overflowed
    with pytest.raises(RuntimeError, match="overflowed"):
        small.n
