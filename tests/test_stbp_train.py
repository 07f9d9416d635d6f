"""Training the CPU-sized spiking ResNet with tdBN on the embedded digits, firing-rate monitors in
eval mode, checkpoints with tdBN's running statistics, and the depth probe."""
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from snnkit.datasets import load
from snnkit.nn import Adam, Trainer
from snnkit.stbp import CrossEntropy, depth_profile, resnet19

pytestmark = pytest.mark.usefixtures("numpy_backend")

SMALL = dict(in_shape=(8, 8), width=16, blocks=(1, 1, 1), fc=64, n_steps=2)


@pytest.mark.slow
def test_small_resnet_with_tdbn_reaches_95_percent_on_digits():
    (x, y), (xv, yv), (xt, yt) = load("digits"), load("digits", "validation"), load("digits", "test")
    m = resnet19(**SMALL, seed=0)
    tr = Trainer(m, CrossEntropy(), Adam(m, 3e-3), batch_size=32, seed=0, progress=False)
    t0 = time.perf_counter()
    with threadpool_limits(1):          # small GEMMs: one BLAS thread is faster on a shared CPU
        tr.fit((x, y), val=(xv, yv), epochs=8)
    loss, acc = tr.evaluate(xt, yt)
    print(f"tdBN small ResNet on digits: test accuracy {acc:.4f} in {time.perf_counter() - t0:.1f} s")
    assert acc >= 0.95
    # firing rates per layer, in eval mode, over the test set
    m.eval().monitor(True)
    m.forward(xt)
    rates = m.firing_rates()
    assert len(rates) == 8 and all(0.0 < r < 1.0 for r in rates.values())


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
    plain = depth_profile(depth=12, norm=None, v_th=0.4)
    td = depth_profile(depth=12, norm="tdbn", v_th=0.4)
    assert plain["rate"][-1] == 0.0 and plain["rate"][0] > 0.05
    assert td["rate"].min() > 0.1
    np.testing.assert_allclose(td["preact_std"], 0.4, rtol=0.02)         # alpha Vth with alpha = 1
