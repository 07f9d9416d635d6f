"""tdBN + LIF fused (snnkit/stbp/fused.py) on the CPU: the fused model computes what the unfused one
does (outputs, every gradient, running statistics, firing rates), in train and eval mode, for both
norms and both surrogates; argument errors. (Finite differences through the fused residual block:
tests/test_stbp_layers.py, test_residual_block_gradients_in_smooth_mode.)"""
import numpy as np
import pytest

from snnkit.stbp import CrossEntropy, LIFParameters, resnet19
from snnkit.stbp import fused as fused_mod
from snnkit.stbp.lif import lif_forward_reference
from snnkit.stbp.tdbn import TDBatchNorm


def _run(fused, norm="tdbn", neuron=None, train=True, steps=2):
    kw = dict(neuron=neuron) if neuron is not None else {}
    m = resnet19(n_steps=3, in_shape=(8, 8), width=4, blocks=(1, 2, 1), fc=8, seed=3, norm=norm,
                 dtype=np.float64, **kw).set_fused(fused)
    m.monitor(True)
    r = np.random.default_rng(0)
    outs = []
    for _ in range(steps):
        x, y = r.random((5, 64)) * 3, r.integers(0, 10, 5)
        if not train:
            m.eval()
        out = m.forward(x)
        loss, g = CrossEntropy()(out, y)
        m.backward(g)
        outs.append((out, loss))
    grads = {f"{i}.{k}": v.copy() for i, l in enumerate(m.layers) for k, v in l.grads.items()}
    bufs = {f"{i}.{k}": v.copy() for i, l in enumerate(m.layers) for k, v in getattr(l, "buffers", {}).items()}
    return m, outs, grads, bufs, m.firing_rates()


@pytest.mark.parametrize("norm", ["tdbn", "bn"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("surrogate", ["rect", "sigmoid"])
def test_fused_model_computes_what_the_unfused_one_does(norm, train, surrogate):
    neuron = LIFParameters(surrogate=surrogate)
    m0, o0, g0, b0, f0 = _run(False, norm, neuron, train)
    m1, o1, g1, b1, f1 = _run(True, norm, neuron, train)
    assert m1.blocks[0].fused is not None and m1._stem_fused is not None
    for (a, la), (b, lb) in zip(o0, o1):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
        assert lb == pytest.approx(la, rel=1e-12)
    assert g0.keys() == g1.keys() and sum(np.abs(v).sum() > 0 for v in g0.values()) > len(g0) // 2
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for k in b0:
        np.testing.assert_allclose(b1[k], b0[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert f1 == pytest.approx(f0, abs=1e-12)


def test_set_fused_off_restores_the_layers_path_and_norm_none_has_nothing_to_fuse():
    m = resnet19(n_steps=2, in_shape=(4, 4), width=2, blocks=(1,), fc=4, seed=0, dtype=np.float64)
    m.set_fused(True)
    m.forward(np.random.default_rng(0).random((2, 16)))
    assert m.blocks[0].lif1._x is None                  # the fused path ran: y was never stored
    m.set_fused(False)
    m.forward(np.random.default_rng(0).random((2, 16)))
    assert m.blocks[0].fused is None and m._stem_fused is None and m.blocks[0].lif1._x is not None
    plain = resnet19(n_steps=2, in_shape=(4, 4), width=2, blocks=(1,), fc=4, seed=0, norm=None).set_fused(True)
    assert plain.blocks[0].fused is None and plain._stem_fused is None


def test_twins_compose_the_existing_twins():
    r = np.random.default_rng(1)
    x = r.normal(size=(3, 4, 5, 6))
    a, b, res = r.uniform(0.5, 1, 6), r.normal(size=6), r.normal(size=x.shape)
    neuron = LIFParameters()
    np.testing.assert_array_equal(fused_mod.norm_lif_forward(x, a, b, neuron, res),
                                  lif_forward_reference(x * a + b + res, neuron))
    go = r.normal(size=x.shape)
    mean, invstd = x.reshape(-1, 6).mean(0), 1 / x.reshape(-1, 6).std(0)
    gy, mg, mgx = fused_mod.norm_lif_backward(go, x, a, b, mean, invstd, neuron, res)
    assert np.allclose(mg, gy.reshape(-1, 6).mean(0))
    assert np.allclose(mgx, (gy * (x - mean) * invstd).reshape(-1, 6).mean(0))


def test_bad_arguments_name_the_argument():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="residual"):
        fused_mod.norm_lif_forward(x, np.ones(4), np.zeros(4), LIFParameters(), residual=np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="grad_o"):
        fused_mod.norm_lif_backward(np.zeros((2, 3)), x, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4),
                                    LIFParameters())
    n = fused_mod.NormLIF(TDBatchNorm(4), None)
    with pytest.raises(RuntimeError):
        n.backward(x)
