"""S3GD CUDA kernels against their NumPy twins on fresh random inputs (several sizes, batch > 1024),
and the whole network's dense and sparse gradients on CuPy against NumPy."""
import numpy as np
import pytest

pytestmark = pytest.mark.gpu

SIZES = [(3, 17, 5, 4), (1100, 7, 33, 9), (64, 60, 100, 50)]     # (B, T, N_in, N)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


@pytest.fixture
def cp(monkeypatch):
    cupy = pytest.importorskip("cupy")
    from snnkit import backend
    monkeypatch.setenv("SNNKIT_BACKEND", "cupy")
    backend.use("cupy")
    yield cupy
    backend.use(None)


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
    if delta == 1e9 and B * T * N_in * T * N > 2e9:
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
        lc.params["weight"] = cp.asnumpy(lg.params["weight"])
        lc.grads["weight"] = np.zeros_like(lc.params["weight"])
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
