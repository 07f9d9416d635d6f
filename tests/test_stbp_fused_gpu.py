"""The fused tdBN + LIF kernels (kernels/stbp_lif.cu: norm_lif_forward, norm_lif_backward) against
their NumPy twins (snnkit/stbp/fused.py) on fresh random inputs, the fused ResNet against the unfused
one on the GPU, and the CUDA-graph training step (snnkit/stbp/graph.py) against the eager step (GPU
only)."""
import numpy as np
import pytest

from snnkit import backend
from snnkit.nn import Adam
from snnkit.stbp import CrossEntropy, LIFParameters, resnet19
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


@pytest.mark.parametrize("fused", [False, True])
def test_graph_step_matches_eager_steps(cp, fused):
    from snnkit.stbp.graph import GraphStep
    kw = dict(in_shape=(8, 8), width=16, blocks=(1, 1, 1), fc=16, n_steps=2, seed=7)
    r = np.random.default_rng(2)
    batches = [(cp.asarray(r.random((96, 64), dtype=np.float32)), r.integers(0, 10, 96)) for _ in range(5)]
    m_e, m_g = resnet19(**kw).set_fused(fused), resnet19(**kw).set_fused(fused)
    opt_e, opt_g = Adam(m_e, 1e-3), Adam(m_g, 1e-3)
    step = GraphStep(m_g, opt_g)
    losses_e, losses_g = [], []
    for x, y in batches:                               # step 1 eager, 2 captured (and launched), 3.. replays
        loss, g = CrossEntropy()(m_e.forward(x), y)
        m_e.backward(g)
        opt_e.step()
        losses_e.append(loss)
        losses_g.append(step(x, y))
    losses_g = [float(v) for v in losses_g]
    assert step.captures == 1 and step.replays == 4 and step.eager == 1   # 2nd call captured and launched
    werr = max(_rel(cp.asnumpy(pg), cp.asnumpy(pe)) for le, lg in zip(m_e.layers, m_g.layers)
               for pe, pg in zip(le.params.values(), lg.params.values()))
    rerr = max(_rel(cp.asnumpy(lg.buffers[k]), cp.asnumpy(le.buffers[k])) for le, lg in zip(m_e.layers, m_g.layers)
               if hasattr(le, "buffers") for k in le.buffers)
    print(f"GraphStep (fused={fused}) vs eager, 5 steps: losses {losses_g} vs {losses_e}; worst weight rel err "
          f"{werr:.1e}, running stats {rerr:.1e}")
    np.testing.assert_allclose(losses_g, losses_e, rtol=1e-5)
    assert werr < 1e-5 and rerr < 1e-5
