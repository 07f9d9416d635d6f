"""Training the CPU-sized spiking ResNet on the embedded digits (tdBN; plain BN and no normalization
for comparison), firing-rate monitors in eval mode, checkpoints with tdBN's running statistics, and
the depth probe (silence, saturation)."""
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from snnkit.datasets import load
from snnkit.nn import Adam, Trainer
from snnkit.stbp import STBP, CrossEntropy, LIFParameters, depth_profile, resnet19

pytestmark = pytest.mark.usefixtures("numpy_backend")

SMALL = dict(in_shape=(8, 8), width=16, blocks=(1, 1, 1), fc=64, n_steps=2)


def _train_on_digits(norm, epochs=8, seed=0):
    """The small ResNet trained on the embedded digits (Adam 3e-3, batch 32): (model, test acc, test data)."""
    (x, y), (xv, yv), (xt, yt) = load("digits"), load("digits", "validation"), load("digits", "test")
    m = resnet19(**SMALL, norm=norm, seed=seed)
    tr = Trainer(m, CrossEntropy(), Adam(m, 3e-3), batch_size=32, seed=0, progress=False)
    t0 = time.perf_counter()
    with threadpool_limits(1):          # small GEMMs: one BLAS thread is faster on a shared CPU
        tr.fit((x, y), val=(xv, yv), epochs=epochs)
    loss, acc = tr.evaluate(xt, yt)
    print(f"norm={norm!r} small ResNet on digits: test accuracy {acc:.4f} after {epochs} epochs "
          f"in {time.perf_counter() - t0:.1f} s")
    return m, acc, xt


def _eval_firing_rates(m, xt):
    """Per-layer firing rates in eval mode over the test set, checked against spikes counted here
    (every LIF's output o [T, B, ...] averaged over all of its entries: spikes per neuron per step)."""
    counted = {}

    def counting(lif, orig):
        def forward(x):
            o = orig(x)
            counted[lif.name] = float(o.mean())
            return o
        return forward

    for lif in m.lif_layers():
        lif.forward = counting(lif, lif.forward)
    m.eval().monitor(True)
    m.forward(xt)
    for lif in m.lif_layers():
        del lif.forward                  # back to the class's method
    rates = m.firing_rates()
    assert list(rates) == [l.name for l in m.lif_layers()] and len(rates) == 8 and set(counted) == set(rates)
    np.testing.assert_allclose([rates[k] for k in counted], list(counted.values()), rtol=1e-6)
    print("  firing rates:", {k: round(v, 3) for k, v in rates.items()})
    return rates


@pytest.mark.slow
def test_small_resnet_with_tdbn_reaches_95_percent_on_digits():
    m, acc, xt = _train_on_digits("tdbn", epochs=8)
    assert acc >= 0.95
    rates = _eval_firing_rates(m, xt)
    assert all(0.0 < r < 1.0 for r in rates.values())


@pytest.mark.slow
@pytest.mark.parametrize("norm", [None, "bn"])
def test_small_resnet_without_norm_and_with_plain_bn_also_train_on_digits(norm):
    """The comparison of notebook 06: the small network is shallow enough (8 LIF layers) to train
    without normalization or with plain BN too (audit, 8 epochs: tdBN 98.3%, BN 97.2%, none 96.1%).
    Fewer epochs here to keep the CPU time down; chance is 10%."""
    m, acc, xt = _train_on_digits(norm, epochs=5)
    assert acc >= 0.85
    rates = _eval_firing_rates(m, xt)
    assert all(0.0 < r < 1.0 for r in rates.values()), rates


def test_monitor_costs_nothing_when_off_and_eval_uses_running_stats():
    x, y = load("digits")
    m = resnet19(**SMALL, seed=1)
    m.forward(x[:64])
    assert all(l.spike_count is None for l in m.lif_layers())          # off by default
    m.eval()
    a = m.forward(x[:10])
    b = m.forward(x[:20])[:10]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)             # eval: per-sample outputs
    m.monitor(True)
    m.forward(x[:10])
    per_step = m.firing_rates(per_step=True)
    assert all(v.shape == (2,) for v in per_step.values())


def test_checkpoint_round_trip_keeps_running_statistics(tmp_path):
    x, y = load("digits")
    m = resnet19(**SMALL, seed=2)
    tr = Trainer(m, CrossEntropy(), Adam(m, 1e-3), batch_size=64, seed=0, progress=False,
                 checkpoint=tmp_path / "ck.npz")
    tr.fit((x[:128], y[:128]), epochs=1)
    m2 = resnet19(**SMALL, seed=3)
    Trainer(m2, CrossEntropy(), Adam(m2, 1e-3), progress=False).load(tmp_path / "ck.npz")
    m.eval(), m2.eval()
    np.testing.assert_allclose(m2.forward(x[:16]), m.forward(x[:16]), rtol=1e-6)


def test_without_normalization_a_deep_stack_goes_silent_and_tdbn_keeps_it_firing():
    plain = depth_profile(depth=12, norm=None, neuron=STBP)
    td = depth_profile(depth=12, norm="tdbn", neuron=STBP)
    assert plain["rate"][-1] == 0.0 and plain["rate"][0] > 0.05
    assert td["rate"].min() > 0.1
    np.testing.assert_allclose(td["preact_std"], 0.4, rtol=0.02)         # alpha Vth with alpha = 1


def test_depth_probe_defaults_are_unchanged_by_the_weight_mean_parameter():
    """weight_mean = 0 is the zero-mean init the notebook's stored (nbval) output was made with."""
    got = {n: depth_profile(depth=16, norm=n, neuron=STBP)["rate"][[0, -1]] for n in (None, "bn", "tdbn")}
    np.testing.assert_allclose(got[None], [0.163, 0.0], atol=5e-4)
    np.testing.assert_allclose(got["bn"], [0.368, 0.323], atol=5e-4)
    np.testing.assert_allclose(got["tdbn"], [0.196, 0.149], atol=5e-4)
    a, b = depth_profile(depth=6, norm=None), depth_profile(depth=6, norm=None, weight_mean=0.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_zero_mean_weights_never_saturate_whatever_the_gain():
    """Half of the inputs are inhibitory: the rate stays well below 1 even with large weights."""
    for gain in (1.0, 2.0, 4.0, 8.0):
        assert depth_profile(depth=12, norm=None, gain=gain)["rate"].max() < 0.6, gain


@pytest.mark.parametrize("seed", [0, 1])
def test_excitatory_weights_saturate_a_deep_stack_and_tdbn_keeps_it_off_the_ceiling(seed):
    """A positive weight mean closes a positive feedback loop: the rate climbs to 1 with depth and
    u leaves the surrogate window (saturated neurons pass no gradient); a low Vth does it sooner."""
    sat = depth_profile(depth=12, norm=None, weight_mean=2.0, seed=seed)
    assert sat["rate"][0] < sat["rate"][-1] and sat["rate"][-4:].min() > 0.97, sat["rate"]
    assert sat["in_window"][-4:].max() < 0.1 and sat["in_window"][0] > 0.3, sat["in_window"]
    mid = depth_profile(depth=12, norm=None, weight_mean=1.5, seed=seed)["rate"]
    assert 0.8 < mid[0] < mid[-4:].min() and mid[-4:].min() > 0.9, mid          # climbs with depth
    low_vth = depth_profile(depth=12, norm=None, weight_mean=1.0, neuron=LIFParameters(v_th=0.1), seed=seed)["rate"][-4:]
    usual_vth = depth_profile(depth=12, norm=None, weight_mean=1.0, neuron=STBP, seed=seed)["rate"][-4:]
    assert low_vth.mean() > 0.9 and low_vth.mean() > usual_vth.mean() + 0.08, (low_vth, usual_vth)
    for norm in ("tdbn", "bn"):                                   # the mean is normalized away per channel
        r = depth_profile(depth=12, norm=norm, weight_mean=2.0, seed=seed)["rate"]
        assert 0.05 < r.min() and r.max() < 0.5, (norm, r)


@pytest.mark.parametrize("seed", [0, 1])
def test_low_gain_silences_a_deep_stack_without_normalization(seed):
    """Too small weights: each layer fires less than the one below, until nothing fires and the
    next layer's input is exactly 0 (no presynaptic spike: no weight gradient either)."""
    low = depth_profile(depth=12, norm=None, gain=0.5, seed=seed)
    assert 0 < low["rate"][0] < 0.1 and (np.diff(low["rate"]) <= 0).all(), low["rate"]
    assert (low["rate"][3:] == 0).all() and low["preact_std"][-1] == 0.0
    assert depth_profile(depth=12, norm="tdbn", gain=0.5, seed=seed)["rate"].min() > 0.1   # tdBN rescues it
