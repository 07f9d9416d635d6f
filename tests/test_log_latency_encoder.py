"""LogLatencyEncoder: S3GD's log-latency code as a Trainer encoder with the device fast path (issue 16).
The device raster must equal ``log_latency``'s, and a Trainer on the device path must train an S3GD
network exactly like the plain per-batch path."""
import numpy as np
import pytest

from snnkit import backend, s3gd
from snnkit.datasets import LogLatencyEncoder, log_latency
from snnkit.nn import Adam, Trainer


def _pixels(n_rows, seed=0):
    """Every 8-bit intensity k / 255 (what MNIST-family loaders give) plus fresh random values."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.arange(256) / 255.0, rng.random(n_rows * 64 - 256)]).astype(np.float32)
    return x.reshape(n_rows, 64)


def test_on_device_equals_log_latency_on_the_cpu():
    enc, x = LogLatencyEncoder(30, tau=20.0, threshold=0.2), _pixels(12)
    ref = np.asarray(log_latency(x, n_steps=30))
    assert ref.sum() > 0 and (ref.sum(axis=1) <= 1).all()          # some spikes, at most one per feature
    np.testing.assert_array_equal(enc.on_device(enc.prepare(x)), ref)
    np.testing.assert_array_equal(np.asarray(enc(x)), ref)


def test_prepare_rejects_features_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LogLatencyEncoder(10).prepare(np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match="n_steps"):
        LogLatencyEncoder(0)


def _train(device_data):
    x = _pixels(8, seed=1)
    y = np.arange(len(x)) % 4
    net = s3gd.Network(64, 16, 4, delta=0.2, sparse=False, seed=0, weight_scale=7.0, readout_scale=5.0)
    tr = Trainer(net, net.loss(), Adam(net, 1e-2), batch_size=3, encode=LogLatencyEncoder(20), seed=0,
                 progress=False, device_data=device_data)
    h = tr.fit((x, y), None, epochs=2)
    return h, [backend.to_numpy(p).copy() for layer in net.layers for p in getattr(layer, "params", {}).values()]


def test_device_path_trains_like_the_plain_path():
    (h_dev, w_dev), (h_plain, w_plain) = _train(True), _train(False)
    assert h_dev["train_loss"] == h_plain["train_loss"]
    for a, b in zip(w_dev, w_plain):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_gpu_kernel_equals_log_latency(cp):
    enc, x = LogLatencyEncoder(100), _pixels(64, seed=2)
    ref = np.asarray(log_latency(x, n_steps=100).get())
    got = enc.on_device(enc.prepare(x))
    assert isinstance(got, cp.ndarray)
    np.testing.assert_array_equal(got.get(), ref)
