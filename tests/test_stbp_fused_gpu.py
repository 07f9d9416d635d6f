"""The kernels of the STBP round 2 (issue 17) on the GPU, on fresh random inputs: the fused tdBN + LIF
kernels (kernels/stbp_lif.cu: norm_lif_forward, norm_lif_backward) against their NumPy twins
(snnkit/stbp/fused.py), the fused ResNet against the unfused one, and the 16-byte-vector im2col /
col2im (kernels/stbp_im2col.cu: im2col_vec, col2im_vec) against the NumPy twins and the scalar kernels."""
import numpy as np
import pytest

from snnkit import backend
from snnkit.stbp import CrossEntropy, LIFParameters, resnet19
from snnkit.stbp import conv as conv_mod
from snnkit.stbp import fused as fused_mod

pytestmark = pytest.mark.gpu


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, shape", [(1, (5, 3)), (2, (64, 7, 7, 130)), (3, (1025, 3, 3, 8)), (8, (300, 33)),
                                      (32, (40, 512))])
@pytest.mark.parametrize("residual, detach_reset", [(False, False), (True, False), (True, True)])
def test_norm_lif_kernels_match_numpy(cp, T, shape, dtype, residual, detach_reset):
    r = np.random.default_rng(T * 11 + len(shape) + 2 * residual + detach_reset)
    C = shape[-1]
    x = (r.normal(size=(T,) + shape) * r.uniform(0.2, 2, C) + r.normal(0, 1, C)).astype(dtype)
    a, b = r.uniform(0.1, 1, C).astype(dtype), r.normal(0.2, 0.3, C).astype(dtype)
    res = r.normal(0, 0.3, x.shape).astype(dtype) if residual else None
    go = r.normal(size=x.shape).astype(dtype)
    mean, invstd = x.reshape(-1, C).mean(0).astype(dtype), r.uniform(0.5, 2, C).astype(dtype)
    neuron = LIFParameters(detach_reset=detach_reset)
    o_ref = fused_mod.norm_lif_forward_reference(x, a, b, neuron, res)
    gy_ref, mg_ref, mgx_ref = fused_mod.norm_lif_backward_reference(go, x, a, b, mean, invstd, neuron, res)
    dev = [cp.asarray(v) if v is not None else None for v in (x, a, b, res, go, mean, invstd)]
    xg, ag, bg, rg, gog, mg, ig = dev
    o = fused_mod.norm_lif_forward(xg, ag, bg, neuron, rg)
    gy, m_g, m_gx = fused_mod.norm_lif_backward(gog, xg, ag, bg, mg, ig, neuron, rg)
    assert o.dtype == dtype and gy.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(o), o_ref)           # --fmad=false: same rounding, same spikes
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(cp.asnumpy(gy), gy_ref, rtol=tol, atol=tol)
    # per-channel means: the sums run in another order than NumPy's
    sum_tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = np.abs(gy_ref).mean() + 1e-30
    assert np.abs(cp.asnumpy(m_g) - mg_ref).max() / scale < sum_tol
    assert np.abs(cp.asnumpy(m_gx) - mgx_ref).max() / scale < sum_tol
    print(f"norm+LIF T={T} shape={shape} {np.dtype(dtype).name} residual={residual} detach={detach_reset}: "
          f"spikes equal ({int(o_ref.sum())} of {o_ref.size}), dL/dy rel err {_rel(cp.asnumpy(gy), gy_ref):.1e}, "
          f"means err {np.abs(cp.asnumpy(m_gx) - mgx_ref).max() / scale:.1e}")


def _grads(m):
    return {f"{getattr(l, 'name', '') or type(l).__name__}{i}.{k}": backend.to_numpy(l.grads[k])
            for i, l in enumerate(m.layers) for k in l.grads}


def test_fused_resnet_matches_unfused_on_the_gpu(cp):
    kw = dict(in_shape=(8, 8), width=8, blocks=(1, 2, 1), fc=16, n_steps=3, dtype=np.float64, seed=5)
    r = np.random.default_rng(1)
    x, y = cp.asarray(r.random((1030, 64)) * 2), cp.asarray(r.integers(0, 10, 1030))
    out = {}
    for fused in (False, True):
        m = resnet19(**kw).set_fused(fused)
        logits = m.forward(x)
        loss, g = CrossEntropy()(logits, y)
        m.backward(g)
        out[fused] = (cp.asnumpy(logits), loss, _grads(m))
    (l0, v0, g0), (l1, v1, g1) = out[False], out[True]
    errs = {k: _rel(g1[k], g0[k]) for k in g0}
    worst = max(errs, key=errs.get)
    print(f"fused vs unfused ResNet (float64, B=1030): logits rel err {_rel(l1, l0):.1e}, worst grad rel err "
          f"{errs[worst]:.1e} ({worst})")
    assert _rel(l1, l0) < 1e-10 and abs(v1 - v0) < 1e-10
    assert errs[worst] < 1e-8, errs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, H, W, C, k, s, p", [(20, 28, 28, 128, 3, 1, 1), (6, 14, 14, 256, 3, 2, 1),
                                                  (5, 7, 9, 132, 1, 2, 0), (3, 8, 8, 6, 3, 1, 0),
                                                  (2, 9, 9, 4, 2, 2, 0), (1100, 5, 5, 3, 3, 1, 1)])
def test_vector_im2col_col2im_match_numpy_and_the_scalar_kernels(cp, monkeypatch, N, H, W, C, k, s, p, dtype):
    r = np.random.default_rng(N + C + k)
    x = r.normal(size=(N, H, W, C)).astype(dtype)
    col_ref = conv_mod.im2col(x, k, s, p)
    d = r.normal(size=col_ref.shape).astype(dtype)
    dx_ref = conv_mod.col2im(d, x.shape, k, s, p)
    out = {}
    for vec in (False, True):
        monkeypatch.setattr(conv_mod, "VECTOR_KERNELS", vec)
        out[vec] = (cp.asnumpy(conv_mod.im2col(cp.asarray(x), k, s, p)),
                    cp.asnumpy(conv_mod.col2im(cp.asarray(d), x.shape, k, s, p)))
    np.testing.assert_array_equal(out[True][0], col_ref)                  # a copy: exact
    np.testing.assert_array_equal(out[True][1], out[False][1])            # the same sums in the same order
    assert _rel(out[True][1], dx_ref) < (1e-6 if dtype == np.float32 else 1e-14)
    print(f"vector im2col/col2im N={N} {H}x{W}x{C} k={k} s={s} p={p} {np.dtype(dtype).name}: im2col exact, col2im "
          f"equal to the scalar kernel, rel err vs NumPy {_rel(out[True][1], dx_ref):.1e}")
