"""Issue 15, BATS: every bad input the probe found gets a clear error (naming the argument, what
was wrong and the fix), a warning for odd-but-valid input, or a correct documented behaviour."""
import time
import warnings

import numpy as np
import pytest

from snnkit import bats, nn
from snnkit.bats.simulate import MAX_FIRINGS
from snnkit.spikes import SpikeTrains

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _times(B=2, n_in=3, t=0.01):
    return np.full((B, n_in, 1), t)


@pytest.mark.parametrize("arg,value,msg", [
    ("theta", np.inf, "theta must be a finite number"),
    ("tau_s", np.inf, "tau_s must be a finite number"),
    ("theta", np.nan, "theta must be a finite number"),
    ("theta", -1.0, "theta must be > 0"),
    ("delta_theta", np.inf, "delta_theta must be a finite number"),
    ("max_spikes", 2.5, "max_spikes must be an integer"),
    ("max_spikes", True, "max_spikes must be an integer"),
])
def test_neuron_settings_are_finite(arg, value, msg):
    kw = dict(tau_s=0.01, theta=1.0, delta_theta=None, max_spikes=1)
    kw[arg] = value
    with pytest.raises((ValueError, TypeError), match=msg):
        bats.simulate(np.ones((2, 3)), _times(), **kw)
    with pytest.raises((ValueError, TypeError), match=msg):
        bats.LIFParameters(**kw)                      # what LIFDense(n_in, n_out, neuron) takes


def test_complex_weight_is_refused_not_truncated():
    with pytest.raises(TypeError, match="weight is complex.*real"):
        bats.LIFDense(3, 2, bats.LIFParameters(0.01, 1.0), weight=np.ones((2, 3)) * (1 + 1j))
    with pytest.raises(TypeError, match="weight is complex"):
        bats.simulate(np.ones((2, 3), complex), _times(), 0.01, 1.0)


def test_nan_weight_is_refused_instead_of_silencing_a_neuron():
    w = np.ones((2, 3))
    w[1, 0] = np.nan
    with pytest.raises(ValueError, match="weight contains NaN or Inf"):
        bats.simulate(w, _times(), 0.01, 0.5)
    layer = bats.LIFDense(3, 2, bats.LIFParameters(0.01, 0.5), dtype=np.float64)
    layer.params["weight"][1, 0] = np.inf
    with pytest.raises(ValueError, match="weight contains NaN or Inf"):
        layer.forward(SpikeTrains(_times(), np.ones((2, 3), np.int32)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_spike_times_are_refused_in_both_precisions(dtype):
    t = _times().astype(dtype)
    t[0, 1, 0] = -0.002
    with pytest.raises(ValueError, match="in_times contains negative times.*>= 0"):
        bats.simulate(np.ones((2, 3), dtype), t, 0.01, 0.5)
    with pytest.raises(ValueError, match="negative times"):
        bats.LIFDense(3, 2, bats.LIFParameters(0.01, 0.5), dtype=dtype).forward(SpikeTrains(t, np.ones((2, 3), np.int32)))


def test_dt_not_shorter_than_t_max_is_refused():
    with pytest.raises(ValueError, match="dt = 0.2 is not shorter than t_max = 0.1"):
        bats.simulate(np.ones((2, 3)), _times(), 0.01, 0.5, t_max=0.1, dt=0.2)
    with pytest.raises(ValueError, match="dt = 0.1 is not shorter than t_max"):
        bats.LIFDense(3, 2, bats.LIFParameters(0.01, 0.5, t_max=0.1, dt=0.1))


def test_rounding_every_spike_past_t_max_warns():
    # every input lies within t_max = 0.1, but the grid step 0.06 moves each of them past it
    t = np.full((1, 3, 1), 0.07)
    with pytest.warns(RuntimeWarning, match="rounding up to the grid moved every input spike past t_max"):
        sim = bats.simulate(np.ones((2, 3)) * 10, t, 0.01, 0.5, t_max=0.1, dt=0.06)
    assert int(sim.counts.sum()) == 0
    with warnings.catch_warnings():            # a grid that keeps some spikes within t_max stays quiet
        warnings.simplefilter("error")
        bats.simulate(np.ones((2, 3)) * 10, np.full((1, 3, 1), 0.01), 0.01, 0.5, t_max=0.1, dt=0.02)


def test_exp_range_is_checked_after_grid_rounding():
    # 0.79 / 0.01 = 79 tau_s is inside float32's limit of 80; rounded up to the 0.03 grid it is 0.81 = 81 tau_s,
    # where exp would overflow and silence the layer: the check must see the rounded time
    t = np.full((1, 3, 1), 0.79, np.float32)
    with pytest.raises(ValueError, match=r"rounded up to the dt grid.*81 tau_s.*overflows float32"):
        bats.simulate(np.ones((2, 3), np.float32), t, 0.01, 0.5, dt=0.03)
    bats.simulate(np.ones((2, 3), np.float32), t, 0.01, 0.5)          # unrounded: 79 tau_s is fine


def test_huge_weights_stop_with_an_error_instead_of_hanging():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"fired more than MAX_FIRINGS = {MAX_FIRINGS} times.*too large for theta"):
        bats.simulate(np.full((4, 3), 1e7), np.full((2, 3, 1), 0.001), 0.005, 1.0, max_spikes=3)
    assert time.perf_counter() - t0 < 30        # was minutes (1e5 alone took 21 s and did not stop at 1e7)


def test_many_spikes_below_the_cap_are_still_counted_exactly():
    # below the cap the overflow count is exact: it matches a run with enough slots
    w, t = np.full((1, 2), 3.0), np.full((1, 2, 1), 0.001)
    small = bats.simulate(w, t, 0.005, 1.0, max_spikes=2, t_max=0.1)
    big = bats.simulate(w, t, 0.005, 1.0, max_spikes=200, t_max=0.1)
    assert int(big.overflow.sum()) == 0
    assert int(small.counts.sum() + small.overflow.sum()) == int(big.counts.sum())


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.int32])
def test_unsupported_dtypes_are_type_errors_not_key_errors(dtype):
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
        bats.LIFDense(3, 2, bats.LIFParameters(0.01, 1.0), dtype=dtype)
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
        bats.ConvLIF((4, 4, 1), 2, 3, bats.LIFParameters(0.01, 1.0), dtype=dtype)


def test_max_spikes_beyond_memory_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"would need .* GiB, more than the .* GiB of RAM.*Lower max_spikes"):
        bats.simulate(np.ones((100, 3)), _times(B=8), 0.01, 1.0, max_spikes=int(1e10))
    with pytest.raises(ValueError, match="Lower max_spikes"):
        bats.LIFDense(3, 100, bats.LIFParameters(0.01, 1.0, max_spikes=1e10))


def test_spikepool_refuses_counts_that_disagree_with_times():
    # the probe: counts say 1 spike per neuron, the times hold 2: 24 of 32 spikes were dropped silently
    t = np.sort(np.random.default_rng(0).uniform(0, 0.1, (1, 16, 2)), axis=2)
    bad = SpikeTrains(t, np.ones((1, 16), np.int32), np.zeros((1, 16), np.int32))
    pool = bats.SpikePool2d((4, 4, 1))
    with pytest.raises(ValueError, match="counts disagrees with the number of finite times"):
        pool.forward(bad)
    good = SpikeTrains(t, np.full((1, 16), 2, np.int32), np.zeros((1, 16), np.int32))
    out = pool.forward(good)
    assert int(np.isfinite(out.times).sum()) == 32 == out.n_spikes()


def test_conv_layout_is_checked_by_shape_where_the_trains_say_it():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 3, 6, 6))                   # channels-first [B, C, H, W]
    conv = bats.ConvLIF((6, 6, 3), 2, 3, bats.LIFParameters(0.01, 0.5))
    from snnkit.datasets import latency
    with pytest.raises(ValueError, match=r"hold a \(3, 6, 6\).*input_shape \(6, 6, 3\).*channels-first"):
        conv.forward(latency(x))
    out = conv.forward(latency(x.transpose(0, 2, 3, 1)))   # channels-last: accepted, and says its own map
    assert out.map_shape == (4, 4, 2)
    with pytest.raises(ValueError, match=r"hold a \(4, 4, 2\).*input_shape \(2, 8, 2\)"):
        bats.SpikePool2d((2, 8, 2)).forward(out)           # same number of neurons, other map
    assert bats.SpikePool2d((4, 4, 2)).forward(out).map_shape == (2, 2, 2)


@pytest.mark.parametrize("make", [lambda: bats.LIFDense(3, 2, bats.LIFParameters(0.01, 1.0)), lambda: bats.SpikePool2d((2, 2, 1)),
                                  lambda: bats.ConvLIF((3, 3, 1), 1, 2, bats.LIFParameters(0.01, 1.0))])
def test_backward_before_forward_is_one_runtime_error(make):
    with pytest.raises(RuntimeError, match="backward called before forward: run forward on the batch first"):
        make().backward(np.zeros((1, 1, 1)))


@pytest.mark.parametrize("labels,err,msg", [
    ([0, -3], ValueError, r"labels must lie in \[0, 2\).*found -3"),
    ([0, 2], ValueError, r"labels must lie in \[0, 2\).*found 2"),
    (np.array([0.0, 1.7]), TypeError, "labels must have an integer dtype, got float64"),
    (np.array([True, False]), TypeError, "got booleans"),
    ([0], ValueError, r"labels must have shape \(2,\)"),
])
def test_bats_losses_share_the_label_check(labels, err, msg):
    out = SpikeTrains(np.array([[[0.1], [0.2]], [[0.2], [np.inf]]]), np.array([[1, 1], [1, 0]], np.int32))
    for loss in (bats.TTFSCrossEntropy(), bats.SpikeCountLoss()):
        with pytest.raises(err, match=msg):
            loss(out, labels)


@pytest.mark.parametrize("arg,value", [("tau_loss", np.inf), ("tau_loss", np.nan), ("t_silent", np.nan)])
def test_ttfs_settings_are_finite(arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be"):
        bats.TTFSCrossEntropy(**{arg: value})


@pytest.mark.parametrize("arg", ["target_true", "target_false"])
def test_count_targets_are_finite(arg):
    with pytest.raises(ValueError, match=f"{arg} must be a finite number"):
        bats.SpikeCountLoss(**{arg: np.nan})


def test_nan_weight_in_a_hidden_bats_layer_stops_training():
    # the probe: a NaN hidden weight silenced its neuron and the run ended at chance, without an error
    x = np.random.default_rng(0).uniform(0, 1, (40, 4))
    y = (x[:, 0] > 0.5).astype(np.int64)
    net = bats.Network(bats.LIFDense(4, 6, bats.LIFParameters(0.005, 0.3), seed=1), bats.LIFDense(6, 2, bats.LIFParameters(0.005, 0.3), seed=2))
    net.layers[1].params["weight"][0, 0] = np.nan
    t = nn.Trainer(net, bats.TTFSCrossEntropy(), nn.Adam(net, lr=1e-3), encode=bats.latency_encoder(0.02),
                   batch_size=20, progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"parameter 'weight' of layer 1 \(LIFDense\) contains NaN/Inf "
                                                r"before training starts"):
        t.fit((x, y), epochs=1)
