"""CUDA kernels of snnkit.stbp against their NumPy twins on fresh random inputs (GPU only):
the fused LIF (spikes bit-exact, gradients), tdBN reductions and elementwise passes, im2col/col2im,
and a whole small ResNet forward/backward, including sizes with more than 1024 samples."""
import time

import numpy as np
import pytest

from snnkit import backend
from snnkit.datasets import load
from snnkit.nn import Adam, Trainer
from snnkit.stbp import CrossEntropy, LIFParameters, TDBatchNorm, depth_profile, resnet19
from snnkit.stbp import conv as conv_mod
from snnkit.stbp import lif as lif_mod
from snnkit.stbp import tdbn as tdbn_mod

# every test takes the CuPy backend through conftest's ``cp`` fixture
pytestmark = pytest.mark.gpu


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, shape", [(1, (5,)), (2, (1500, 37)), (3, (1025, 3, 3, 8)), (8, (2 ** 20 + 5,)),
                                      (32, (2000, 33))])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_lif_kernels_match_numpy(cp, T, shape, dtype, detach_reset):
    r = np.random.default_rng(T * 7 + len(shape))
    x = r.normal(0.3, 0.5, (T,) + shape).astype(dtype)
    g = r.normal(size=x.shape).astype(dtype)
    o_ref = lif_mod.lif_forward(x)
    neuron = LIFParameters(detach_reset=detach_reset)
    gx_ref = lif_mod.lif_backward(g, x, neuron)
    o = lif_mod.lif_forward(cp.asarray(x))
    gx = lif_mod.lif_backward(cp.asarray(g), cp.asarray(x), neuron)
    assert o.dtype == dtype and gx.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(o), o_ref)          # --fmad=false: same rounding
    np.testing.assert_allclose(cp.asnumpy(gx), gx_ref, rtol=1e-6 if dtype == np.float32 else 1e-13,
                               atol=1e-6 if dtype == np.float32 else 1e-13)
    print(f"LIF T={T} shape={shape} {np.dtype(dtype).name} detach={detach_reset}: spikes equal, "
          f"grad rel err {_rel(cp.asnumpy(gx), gx_ref):.2e}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_thread", [1, 2, 4, 8])
def test_lif_kernels_every_width_and_alignment(cp, per_thread, dtype):
    """Every neurons-per-thread width V of the LIF kernels (the launcher picks one per T), on a
    size that is a multiple of V and one that is not, on arrays that start on a vector boundary
    (vector loads) and 1 element off it (scalar loads): spikes bit-exact, gradients as the twin's."""
    T = 3
    r = np.random.default_rng(per_thread)
    for M in (4096, 4099):
        x = r.normal(0.3, 0.5, (T, M)).astype(dtype)
        g = r.normal(size=x.shape).astype(dtype)
        neuron = LIFParameters()
        o_ref, gx_ref = lif_mod.lif_forward_reference(x, neuron), lif_mod.lif_backward_reference(g, x, neuron)
        for offset in (0, 1):
            def placed(a):                               # a contiguous [T, M] view `offset` elements in
                buf = cp.zeros(offset + a.size, dtype)
                view = buf[offset:].reshape(a.shape)
                view[...] = cp.asarray(a)
                return view
            xd, gd = placed(x), placed(g)
            o = lif_mod._lif_forward_cuda(xd, neuron, per_thread)
            gx = lif_mod._lif_backward_cuda(gd, xd, neuron, per_thread)
            np.testing.assert_array_equal(cp.asnumpy(o), o_ref)
            np.testing.assert_allclose(cp.asnumpy(gx), gx_ref, rtol=1e-6 if dtype == np.float32 else 1e-13,
                                       atol=1e-6 if dtype == np.float32 else 1e-13)
            assert int(o.sum()) > 0 and np.abs(gx_ref).max() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("R, C", [(7, 1), (2 * 1100 * 25, 33), (4096, 130), (96, 512), (300001, 3)])
def test_tdbn_kernels_match_numpy(cp, R, C, dtype):
    r = np.random.default_rng(R + C)
    x = (r.normal(size=(R, C)) * r.uniform(0.1, 3, C) + r.normal(0, 2, C)).astype(dtype)
    g = r.normal(size=(R, C)).astype(dtype)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    mean, var = tdbn_mod.batch_stats(x.astype(np.float64))
    m_gpu, v_gpu = tdbn_mod.batch_stats(cp.asarray(x))
    assert _rel(cp.asnumpy(m_gpu), mean) < tol and _rel(cp.asnumpy(v_gpu), var) < tol
    mean, var = mean.astype(dtype), var.astype(dtype)
    gamma, beta = r.normal(size=C).astype(dtype), r.normal(size=C).astype(dtype)
    rm, rv = r.normal(size=C).astype(dtype), r.uniform(0.5, 2, C).astype(dtype)
    rm_g, rv_g = cp.asarray(rm), cp.asarray(rv)
    ref = tdbn_mod.fold_stats(mean, var, gamma, beta, 0.3, 1e-5, rm, rv, 0.1, R)
    got = tdbn_mod.fold_stats(*(cp.asarray(v) for v in (mean, var, gamma, beta)), 0.3, 1e-5, rm_g, rv_g, 0.1, R)
    for a, b in zip(list(got) + [rm_g, rv_g], list(ref) + [rm, rv]):
        assert _rel(cp.asnumpy(a), b) < tol
    invstd, a_, b_ = ref
    y = tdbn_mod.affine(cp.asarray(x), cp.asarray(a_), cp.asarray(b_))
    assert _rel(cp.asnumpy(y), tdbn_mod.affine(x, a_, b_)) < tol
    mg, mgx = tdbn_mod.channel_grad_means(g, x, mean, invstd)
    mg_g, mgx_g = tdbn_mod.channel_grad_means(cp.asarray(g), cp.asarray(x), cp.asarray(mean), cp.asarray(invstd))
    assert np.abs(cp.asnumpy(mg_g) - mg).max() < tol * 10 and np.abs(cp.asnumpy(mgx_g) - mgx).max() < tol * 10
    for batch_statistics in (True, False):
        dx = tdbn_mod.backward_dx(cp.asarray(g), cp.asarray(x), *(cp.asarray(v) for v in (mean, invstd, a_, mg, mgx)),
                                  batch_statistics)
        dx_ref = tdbn_mod.backward_dx(g, x, mean, invstd, a_, mg, mgx, batch_statistics)
        assert _rel(cp.asnumpy(dx), dx_ref) < tol * 10
    print(f"tdBN R={R} C={C} {np.dtype(dtype).name}: var rel err {_rel(cp.asnumpy(v_gpu), var):.1e}, "
          f"dx rel err {_rel(cp.asnumpy(dx), dx_ref):.1e}")


@pytest.mark.parametrize("train", [True, False])
def test_tdbn_layer_matches_numpy(cp, train):
    r = np.random.default_rng(9)
    x = r.normal(1, 2, (2, 1100, 3, 3, 40))
    g = r.normal(size=x.shape)
    res = {}
    for name in ("numpy", "cupy"):
        backend.use(name)
        bn = TDBatchNorm(40, alpha=0.7, v_th=0.4, dtype=np.float64)
        bn.buffers["running_var"][...] = backend.to_device(np.linspace(0.5, 2, 40))
        (bn.train if train else bn.eval)()
        y = bn.forward(backend.to_device(x))
        dx = bn.backward(backend.to_device(g))
        res[name] = [backend.to_numpy(v) for v in (y, dx, bn.grads["gamma"], bn.grads["beta"],
                                                   bn.buffers["running_mean"], bn.buffers["running_var"])]
    backend.use("cupy")
    errs = [_rel(a, b) for a, b in zip(res["cupy"], res["numpy"])]
    print(f"TDBatchNorm layer (train={train}, B=1100): rel errs y/dx/dgamma/dbeta/rm/rv {['%.0e' % e for e in errs]}")
    assert max(errs) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, H, W, C, k, s, p", [(1100, 5, 5, 3, 3, 1, 1), (4, 28, 28, 64, 3, 2, 1),
                                                  (3, 7, 9, 130, 1, 2, 0), (2, 8, 8, 5, 3, 1, 0),
                                                  (2, 9, 9, 4, 2, 2, 0)])
def test_im2col_kernels_match_numpy(cp, N, H, W, C, k, s, p, dtype):
    r = np.random.default_rng(N + C)
    x = r.normal(size=(N, H, W, C)).astype(dtype)
    col = conv_mod.im2col(cp.asarray(x), k, s, p)
    col_ref = conv_mod.im2col(x, k, s, p)
    np.testing.assert_array_equal(cp.asnumpy(col), col_ref)          # a copy: exact
    d = r.normal(size=col_ref.shape).astype(dtype)
    dx = conv_mod.col2im(cp.asarray(d), x.shape, k, s, p)
    dx_ref = conv_mod.col2im(d, x.shape, k, s, p)
    assert _rel(cp.asnumpy(dx), dx_ref) < (1e-6 if dtype == np.float32 else 1e-14)
    print(f"im2col N={N} {H}x{W}x{C} k={k} s={s} p={p}: exact; col2im rel err {_rel(cp.asnumpy(dx), dx_ref):.1e}")


def test_small_resnet_forward_backward_matches_numpy(cp):
    kw = dict(in_shape=(8, 8), width=8, blocks=(1, 1, 1), fc=16, n_steps=3, dtype=np.float64, seed=3)
    r = np.random.default_rng(0)
    x, y = r.random((1030, 64)), r.integers(0, 10, 1030)
    out = {}
    for name in ("numpy", "cupy"):
        backend.use(name)
        m = resnet19(**kw)
        m.monitor(True)
        logits = m.forward(backend.to_device(x))
        loss, g = CrossEntropy()(logits, backend.to_device(y))
        m.backward(g)
        out[name] = (backend.to_numpy(logits), loss,
                     {f"{getattr(l, 'name', '') or type(l).__name__}.{k}": backend.to_numpy(l.grads[k])
                      for l in m.layers for k in l.grads}, m.firing_rates())
    backend.use("cupy")
    (l_c, v_c, g_c, fr_c), (l_g, v_g, g_g, fr_g) = out["numpy"], out["cupy"]
    assert _rel(l_g, l_c) < 1e-10 and abs(v_g - v_c) < 1e-10
    errs = {k: _rel(g_g[k], g_c[k]) for k in g_c}
    worst = max(errs, key=errs.get)
    print(f"ResNet (float64, B=1030): logits rel err {_rel(l_g, l_c):.1e}, worst grad rel err "
          f"{errs[worst]:.1e} ({worst})")
    assert errs[worst] < 1e-8, errs
    assert fr_c == pytest.approx(fr_g, abs=1e-12)


def test_small_resnet_trains_on_digits_on_the_gpu(cp):
    """The CPU-sized recipe, run end to end on CuPy (float32 kernels, cuBLAS GEMMs)."""
    (x, y), (xt, yt) = load("digits"), load("digits", "test")
    m = resnet19(in_shape=(8, 8), width=16, blocks=(1, 1, 1), fc=64, n_steps=2, seed=0)
    tr = Trainer(m, CrossEntropy(), Adam(m, 3e-3), batch_size=32, seed=0, progress=False)
    t0 = time.perf_counter()
    tr.fit((x, y), epochs=8)
    _, acc = tr.evaluate(xt, yt)
    print(f"digits on GPU: test accuracy {acc:.4f} after 8 epochs in {time.perf_counter() - t0:.1f} s")
    assert acc >= 0.95


def test_notebook_probes_run_under_the_cupy_backend(cp):
    """The depth probe and the pre-activation panel build NumPy inputs; with CuPy as the backend they
    must neither mix devices (a CuPy gamma times a NumPy x raised TypeError in notebook 06) nor move
    their answer: the same numbers as under the NumPy backend."""
    pytest.importorskip("plotly")          # the widget module draws with plotly (not on every GPU machine)
    from snnkit.widgets import stbp as wstbp          # so it is imported only here, after the skip
    got = {n: depth_profile(depth=6, width=32, norm=n, seed=1) for n in (None, "bn", "tdbn")}
    samples = wstbp.preactivation_samples(v_th=0.4, alpha=0.7)
    fig = wstbp.depth_callback(depth=4, v_th=0.4, alpha=1.0, half_width=0.5, gain=1.0)
    assert len(fig.data) > 0
    backend.use("numpy")
    try:
        ref = {n: depth_profile(depth=6, width=32, norm=n, seed=1) for n in (None, "bn", "tdbn")}
        ref_samples = wstbp.preactivation_samples(v_th=0.4, alpha=0.7)
    finally:
        backend.use("cupy")
    for n in got:
        for k in ("rate", "preact_std", "in_window"):
            np.testing.assert_allclose(got[n][k], ref[n][k], rtol=1e-6, err_msg=f"{n} {k}")
    for k in samples:
        np.testing.assert_allclose(samples[k], ref_samples[k], rtol=1e-6, err_msg=k)
