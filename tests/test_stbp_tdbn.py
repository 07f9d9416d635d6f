"""tdBN: finite differences (train and eval mode), running statistics, eval mode, folding into the
preceding conv for inference, and the N(0, (alpha Vth)^2) scale of pre-activations at
initialization (train mode, and eval mode once the running statistics have settled)."""
from functools import partial
from statistics import NormalDist

import numpy as np
import pytest

from snnkit.stbp import (BatchNorm, Conv2d, LIFParameters, TDBatchNorm, batch_stats, conv2d_forward, normalize,
                         resnet19)

from gradcheck import fd_check

pytestmark = pytest.mark.usefixtures("numpy_backend")


_fd_check = partial(fd_check, rtol=1e-6, max_entries=60)      # tdBN is smooth: a tighter check


@pytest.mark.parametrize("train", [True, False])
def test_tdbn_gradients_match_finite_differences(train):
    r = np.random.default_rng(0)
    bn = TDBatchNorm(5, alpha=0.7, v_th=0.4, dtype=np.float64)
    bn.params["gamma"][:] = r.normal(1, 0.2, 5)
    bn.params["beta"][:] = r.normal(0, 0.2, 5)
    bn.buffers["running_mean"][:] = r.normal(0, 1, 5)
    bn.buffers["running_var"][:] = r.uniform(0.5, 2, 5)
    (bn.train if train else bn.eval)()
    x = r.normal(0.5, 2.0, (3, 2, 2, 3, 5))
    R = r.normal(size=x.shape)
    saved = {k: v.copy() for k, v in bn.buffers.items()}

    def f():
        for k, v in saved.items():                       # keep running stats fixed across evaluations
            bn.buffers[k][:] = v
        return float((bn.forward(x) * R).sum())

    f()
    gx = bn.backward(R)
    _fd_check(f, [x, bn.params["gamma"], bn.params["beta"]], [gx, bn.grads["gamma"], bn.grads["beta"]])


def test_statistics_are_over_time_batch_and_space_per_channel():
    r = np.random.default_rng(1)
    x = r.normal(size=(4, 3, 2, 2, 6)) * np.arange(1, 7) + np.arange(6)
    mean, var = batch_stats(x.reshape(-1, 6))
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2, 3)))
    np.testing.assert_allclose(var, x.var(axis=(0, 1, 2, 3)))
    # float32 two-pass variance survives a large offset that breaks E[x^2] - E[x]^2
    big = (1e4 + r.normal(size=(4096, 2))).astype(np.float32)
    _, v32 = batch_stats(big)
    np.testing.assert_allclose(v32, big.astype(np.float64).var(axis=0), rtol=1e-3)


def test_running_statistics_and_eval_mode():
    r = np.random.default_rng(2)
    bn = TDBatchNorm(3, alpha=1.0, v_th=0.5, dtype=np.float64, momentum=0.1)
    x = r.normal(2.0, 3.0, (2, 8, 3))
    bn.forward(x)
    R = x.size // 3
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.reshape(-1, 3).var(0) * R / (R - 1))
    bn.eval()
    rm, rv = bn.buffers["running_mean"].copy(), bn.buffers["running_var"].copy()
    y = bn.forward(x)
    np.testing.assert_allclose(y, 0.5 * (x - rm) / np.sqrt(rv + 1e-5))
    # eval: a sample's output does not depend on the rest of the batch, and stats stay put
    np.testing.assert_allclose(bn.forward(x[:, :1]), y[:, :1])
    np.testing.assert_array_equal(bn.buffers["running_mean"], rm)
    # train mode: it does depend on the batch
    bn.train()
    assert not np.allclose(bn.forward(x[:, :4]), bn.forward(x)[:, :4])


@pytest.mark.parametrize("alpha", [1.0, 1 / np.sqrt(2)])
def test_preactivations_start_as_normal_with_std_alpha_vth(alpha):
    r = np.random.default_rng(3)
    v_th = 0.4
    conv = Conv2d(3, 16, 3, seed=0)
    bn = TDBatchNorm(16, alpha=alpha, v_th=v_th)
    x = (r.random((2, 16, 8, 8, 3)) < 0.3).astype(np.float32)     # spikes in, [T, B, H, W, C]
    y = bn.forward(conv.forward(x)).reshape(-1, 16)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), alpha * v_th, rtol=1e-3)
    # plain BN ignores the threshold: N(0, 1)
    np.testing.assert_allclose(BatchNorm(16).forward(conv.forward(x)).reshape(-1, 16).std(0), 1, rtol=1e-3)


@pytest.mark.parametrize("alpha", [1.0, 1 / np.sqrt(2)])
def test_preactivations_stay_normal_alpha_vth_in_eval_mode_once_running_stats_settle(alpha):
    """Train-mode passes over fresh spike batches move the running statistics (momentum 0.1) to the
    population's; in eval mode, on new samples, the pre-activations are then N(0, (alpha Vth)^2):
    per-channel mean and std, and the pooled quantiles against the normal's."""
    r = np.random.default_rng(4)
    v_th = 0.4
    sigma = alpha * v_th
    conv = Conv2d(3, 16, 3, seed=0)
    bn = TDBatchNorm(16, alpha=alpha, v_th=v_th)

    def spikes():
        return (r.random((2, 16, 8, 8, 3)) < 0.3).astype(np.float32)      # [T, B, H, W, C], rate 0.3

    for _ in range(60):                               # 0.9^60 ~ 2e-3 of the initial (0, 1) left
        bn.forward(conv.forward(spikes()))
    bn.eval()
    conv.eval()
    y = np.concatenate([bn.forward(conv.forward(spikes())).reshape(-1, 16) for _ in range(8)]).astype(np.float64)
    np.testing.assert_allclose(y.mean(0), 0, atol=0.05 * sigma)
    np.testing.assert_allclose(y.std(0), sigma, rtol=0.05)
    qs = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    normal = [NormalDist(0, sigma).inv_cdf(q) for q in qs]
    np.testing.assert_allclose(np.quantile(y, qs), normal, atol=0.05 * sigma)


@pytest.mark.parametrize("cls, alpha", [(TDBatchNorm, 1.0), (TDBatchNorm, 1 / np.sqrt(2)), (BatchNorm, 1.0)])
def test_folded_into_the_preceding_conv_reproduces_eval_mode(cls, alpha):
    """Inference folding: W' = W gamma alpha Vth / sigma, b' = beta - mu gamma alpha Vth / sigma
    (the conv has no bias): conv(x; W') + b' equals tdBN(conv(x; W)) in eval mode."""
    r = np.random.default_rng(5)
    v_th = 0.3
    conv = Conv2d(4, 6, 3, seed=1, dtype=np.float64)
    bn = cls(6, alpha=alpha, v_th=v_th, dtype=np.float64)
    bn.params["gamma"][:] = r.normal(1, 0.3, 6)
    bn.params["beta"][:] = r.normal(0, 0.3, 6)
    for _ in range(5):                                 # running statistics away from their init
        bn.forward(conv.forward(r.normal(0.5, 1.0, (2, 3, 5, 5, 4))))
    bn.eval()
    conv.eval()
    a, b = bn.folded()
    scale = alpha * v_th if cls is TDBatchNorm else 1.0
    sigma = np.sqrt(bn.buffers["running_var"] + bn.eps)
    np.testing.assert_allclose(a, bn.params["gamma"] * scale / sigma, rtol=1e-12)
    np.testing.assert_allclose(b, bn.params["beta"] - bn.buffers["running_mean"] * a, rtol=1e-12, atol=1e-15)
    x = r.normal(0.5, 1.0, (2, 3, 5, 5, 4))
    w_folded = conv.params["weight"] * a[:, None, None, None]            # weight [Cout, k, k, Cin]
    y_folded = conv2d_forward(x.reshape(6, 5, 5, 4), w_folded, 1, 1).reshape(2, 3, 5, 5, 6) + b
    np.testing.assert_allclose(y_folded, bn.forward(conv.forward(x)), rtol=1e-10, atol=1e-12)


def test_every_lif_of_resnet_starts_near_threshold_scale():
    """With tdBN each LIF's input has std ~ Vth at init (the block's two branches of Vth/sqrt2
    add back to ~Vth): no layer starts silent or saturated."""
    m = resnet19(in_shape=(8, 8), width=8, blocks=(2, 1), fc=16, n_steps=2, neuron=LIFParameters(v_th=0.4), seed=0)
    stds = []
    for lif in m.lif_layers():
        orig = lif.forward
        lif.forward = lambda x, orig=orig: (stds.append(float(x.std())), orig(x))[1]
    m.monitor(True)
    m.forward(np.random.default_rng(0).random((64, 64)).astype(np.float32))
    assert all(0.25 < s < 0.6 for s in stds), stds
    rates = m.firing_rates()
    assert all(0.05 < v < 0.6 for v in rates.values()), rates


def test_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        TDBatchNorm(4).forward(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        TDBatchNorm(4, alpha=0)
    with pytest.raises(ValueError, match="momentum"):
        TDBatchNorm(4, momentum=0)
    with pytest.raises(ValueError, match="at least 2"):
        TDBatchNorm(4).forward(np.zeros((1, 1, 4), np.float32))


@pytest.mark.parametrize("alpha", [1.0, 1 / np.sqrt(2)])
def test_normalize_is_a_fresh_layers_training_output(alpha):
    """The functional form used by the depth probe and the pre-activation panel (no parameters on the
    backend's device) gives what a new TDBatchNorm / BatchNorm layer gives in training mode."""
    x = np.random.default_rng(5).normal(0.3, 2.0, (2, 7, 4, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(normalize(x, alpha * 0.4), TDBatchNorm(6, alpha=alpha, v_th=0.4).forward(x),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(normalize(x), BatchNorm(6).forward(x), rtol=1e-6, atol=1e-6)
