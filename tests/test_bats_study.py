"""Metrics and the dt sweep of the time-discretization study (hand-made trains with known answers,
then a tiny network on the digits)."""
import numpy as np
import pytest

from snnkit import datasets
from snnkit.bats import LIFParameters
from snnkit.bats.conv import ConvLIF
from snnkit.bats.layers import LIFDense, Network, SpikeInput, latency_encoder
from snnkit.bats.losses import TTFSCrossEntropy
from snnkit.bats.study import (columns, continuous_times, discretization_shift, evaluate, falloff_dt,
                               latency_curve, set_dt, spike_stats, sweep)
from snnkit.nn import Adam
from snnkit.spikes import SpikeTrains, from_lists

pytestmark = pytest.mark.usefixtures("numpy_backend")
INF = np.inf


def test_spike_stats():
    s = from_lists([[[0.1, 0.2], [], [0.3]], [[], [], []]], n_slots=2)
    st = spike_stats(s)
    assert st["spikes_per_sample"] == 1.5          # 3 spikes in sample 0, none in sample 1
    assert st["spikes_per_neuron"] == 0.5
    assert st["silent_share"] == 4 / 6
    assert st["overflow"] == 0
    with pytest.raises(ValueError, match="counts"):
        spike_stats(SpikeTrains(np.zeros((0, 2, 1)), np.zeros((0, 2), np.int32)))


def test_latency_curve_known_values():
    # sample 0 (label 1): label neuron fires at 0.01, 0.03; sample 1 (label 0): at 0.02
    out = from_lists([[[0.5], [0.01, 0.03]], [[0.02], [0.04]]], n_slots=2)
    grid = [0.0, 0.015, 0.025, 0.03, 1.0]
    np.testing.assert_allclose(latency_curve(out, [1, 0], grid), [0, 1 / 3, 2 / 3, 1, 1])
    # with a target of 2 spikes: sample 0 reaches 1/2 then 1; sample 1 only ever 1/2
    np.testing.assert_allclose(latency_curve(out, [1, 0], grid, target=2),
                               [0, 0.25, 0.5, 0.75, 0.75])
    with pytest.raises(ValueError, match="labels"):
        latency_curve(out, [1, 2], grid)
    with pytest.raises(ValueError, match="target"):
        latency_curve(out, [1, 0], grid, target=0)


def test_discretization_shift():
    c = from_lists([[[0.011, 0.023], [0.005]]], n_slots=2)
    d = from_lists([[[0.02, 0.03], [0.01]]], n_slots=2)
    assert np.isclose(discretization_shift(c, d), (0.009 + 0.007 + 0.005) / 3)
    assert discretization_shift(None, d) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        discretization_shift(from_lists([[[0.1]]]), d)


def _net(dt=None, hidden=12, seed=0):
    return Network(SpikeInput(64),
                   LIFDense(64, hidden, LIFParameters(0.13, 0.1, max_spikes=3, t_max=0.2, dt=dt), init=(-0.3, 1.0), seed=seed),
                   LIFDense(hidden, 10, LIFParameters(0.13, 0.3, max_spikes=5, t_max=0.2, dt=dt), init=(-0.3, 1.0), seed=seed + 1))


def test_set_dt_and_continuous_times():
    net = _net()
    x, _ = datasets.load("digits", "test")
    enc = latency_encoder(0.1)
    net.forward(enc(x[:8]))
    assert continuous_times(net.layers[1]) is None              # dt=None: no second set of times
    set_dt(net, 0.005)
    assert all(l.dt == 0.005 for l in net.layers[1:])
    out = net.forward(enc(x[:8]))
    cont = continuous_times(net.layers[2])
    assert cont.times.shape == out.times.shape
    fin = np.isfinite(out.times)
    assert np.all((out.times[fin] - cont.times[fin] > 0) & (out.times[fin] - cont.times[fin] <= 0.005 + 1e-6))
    with pytest.raises(ValueError, match="dt"):
        set_dt(net, -1.0)
    with pytest.raises(ValueError, match="no BATS layers"):
        set_dt(Network(SpikeInput(4)), 0.1)
    conv = ConvLIF((8, 8, 1), 2, 3, LIFParameters(tau_s=0.13, theta=0.1, max_spikes=2, t_max=0.2, dt=0.01), seed=0)
    conv.forward(enc(x[:2]))
    assert continuous_times(conv) is conv.continuous


def test_evaluate_counts_and_accuracy():
    x, y = datasets.load("digits", "test")
    x, y = x[:50], y[:50]
    enc = latency_encoder(0.1)
    loss = TTFSCrossEntropy(0.02)
    for dt in (None, 0.004):
        net = _net(dt)
        summary, per_layer, lat = evaluate(net, x, y, enc, loss, t_grid=np.linspace(0, 0.2, 11), batch_size=16)
        out = net.forward(enc(x))
        acc = float((loss.predict(out) == y).mean())
        assert summary["accuracy"] == acc
        assert [p["layer_index"] for p in per_layer] == [1, 2]
        hidden = net.layers[1].last.counts.sum(axis=1).mean()
        assert np.isclose(per_layer[0]["spikes_per_sample"], hidden)
        assert np.isclose(per_layer[1]["silent_share"], (out.counts == 0).mean())
        assert lat.shape == (11,) and np.all(np.diff(lat) >= 0) and lat[-1] in (0.0, 1.0)
        if dt is None:
            assert all(p["mean_abs_shift"] == 0.0 for p in per_layer)
        else:
            assert all(0 < p["mean_abs_shift"] <= dt for p in per_layer if p["spikes_per_sample"] > 0)


def test_sweep_rows_and_falloff():
    xtr, ytr = datasets.load("digits", "train")
    xte, yte = datasets.load("digits", "test")
    seen = []
    rows, lat = sweep([None, 0.01], lambda dt, seed: _net(dt, seed=seed), (xtr[:64], ytr[:64]), (xte[:40], yte[:40]),
                      epochs=1, encode=latency_encoder(0.1), loss_fn=TTFSCrossEntropy(0.02),
                      optimizer=lambda m: Adam(m, 0.01), batch_size=32, t_grid=[0.05, 0.1, 0.2],
                      on_result=lambda dt, r: seen.append(dt))
    assert seen == [None, 0.01]
    assert len(rows) == 4                                   # 2 dt x 2 spiking layers
    cols = columns(rows)
    assert cols["dt"] == [0.0, 0.0, 0.01, 0.01] and cols["continuous"] == [True, True, False, False]
    for k in ("accuracy", "spikes_per_sample", "silent_share", "mean_abs_shift", "train_seconds", "layer"):
        assert len(cols[k]) == 4
    assert set(lat) == {None, 0.01} and lat[None].shape == (3,)
    with pytest.raises(ValueError, match="dt"):
        sweep([0.0], None, None, None, epochs=1, encode=None, loss_fn=None, optimizer=None)
    table = [{"dt": 0.0, "continuous": True, "accuracy": 0.9}, {"dt": 0.01, "accuracy": 0.89},
             {"dt": 0.02, "accuracy": 0.80}, {"dt": 0.04, "accuracy": 0.3}]
    assert falloff_dt(table, drop=0.05) == 0.02
    assert falloff_dt(table, drop=0.7) is None
