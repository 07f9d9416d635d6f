"""EventBinner: the encoder of event data (SHD) with the device fast path (issue 16). Its device
raster (the NumPy twin here, the CUDA kernel in the gpu test) must be ``EventData[idx]`` bit for
bit in both modes, with out-of-window events, empty samples and repeated rows; a Trainer on the
device path must train an S3GD network exactly like the plain per-batch path; bad input gets an
error that names the argument and the fix."""
import numpy as np
import pytest

from snnkit import backend, s3gd
from snnkit.datasets import EventBinner, EventData
from snnkit.datasets.events import DeviceEvents, bin_batch
from snnkit.nn import Adam, Trainer


def _events(n=40, n_steps=30, n_channels=6, mode="binary", seed=0, max_events=60):
    """Random events: a few channels and steps (so cells collide: counts above 1), times running past
    the window (out-of-window events), every fifth sample empty, one sample with many events."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, max_events, n)
    lens[::5] = 0
    lens[1] = 20 * max_events
    off = np.concatenate([[0], np.cumsum(lens)])
    t = np.sort(rng.uniform(0, 1.3 * n_steps * 1e-3, off[-1]))    # ~ a quarter after the window
    ch = rng.integers(0, n_channels, off[-1])
    return EventData(off, t, ch, n_channels, n_steps, 1e-3, mode)


@pytest.mark.parametrize("mode", ["binary", "count"])
def test_twin_equals_eventdata(numpy_backend, mode):
    d = _events(mode=mode)
    assert d.n_dropped > 0
    enc = EventBinner(d.n_steps)
    dev = enc.prepare(d)
    assert isinstance(dev, DeviceEvents) and len(dev) == len(d)
    assert dev.cells.dtype == np.int32 and len(dev.cells) == d.n_events - d.n_dropped   # late events not stored
    rng = np.random.default_rng(1)
    for idx in (rng.integers(0, len(d), 17), np.array([0, 5, 0, 1, 1]), np.array([5]), np.array([], int),
                np.array([-1, -40, 3]), slice(3, 30, 4), slice(None)):
        want, got = d[idx], enc.on_device(dev[idx])
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    full = enc.on_device(dev)                            # the whole set: dev[:]
    np.testing.assert_array_equal(full, d[:])
    assert full[5].sum() == 0 and full.sum() > 0         # an empty sample stays empty
    if mode == "count":
        assert full.max() > 1                            # cells shared by several events are counted
    else:
        assert set(np.unique(full)) == {0.0, 1.0}
    np.testing.assert_array_equal(np.asarray(enc(d[[2, 7]])), d[[2, 7]])     # the host path


def test_float64_raster_and_twin_function(numpy_backend):
    d = _events(mode="count", seed=3)
    enc = EventBinner(d.n_steps, dtype=np.float64)
    dev = enc.prepare(d)
    idx = np.array([1, 4, 2])
    got = enc.on_device(dev[idx])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, d[idx])
    np.testing.assert_array_equal(bin_batch(dev.offsets, dev.cells, idx, d.n_steps, d.n_channels, "count"), d[idx])
    assert enc(d[idx]).dtype == np.float64


def test_no_event_in_the_window(numpy_backend):
    d = EventData([0, 2, 2], [0.5, 0.7], [0, 1], 2, 10, 1e-3)      # both after 10 ms
    enc = EventBinner(10)
    dev = enc.prepare(d)
    assert len(dev.cells) == 0 and dev.max_events == 0
    np.testing.assert_array_equal(enc.on_device(dev[[0, 1, 0]]), np.zeros((3, 10, 2), np.float32))


def _train(device_data, mode):
    d = _events(n=24, n_steps=25, n_channels=12, mode=mode, seed=2, max_events=80)
    y = np.arange(len(d)) % 3
    net = s3gd.Network(12, 16, 3, delta=0.2, sparse=True, readout="sum", seed=0, weight_scale=7.0,
                       readout_scale=5.0)
    tr = Trainer(net, net.loss(), Adam(net, 1e-2), batch_size=5, encode=EventBinner(25), seed=0,
                 progress=False, device_data=device_data)
    h = tr.fit((d, y), (d.subset(np.arange(7)), y[:7]), epochs=2)
    weights = [backend.to_numpy(p).copy() for layer in net.layers for p in getattr(layer, "params", {}).values()]
    return tr, h, weights


@pytest.mark.parametrize("mode", ["binary", "count"])
def test_device_path_trains_like_the_plain_path(numpy_backend, mode):
    (fast, h_dev, w_dev), (plain, h_plain, w_plain) = _train(True, mode), _train(False, mode)
    assert any(isinstance(hit[1], DeviceEvents) for hit in fast._uploads.values()), "the fast path did not run"
    assert not plain._uploads
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert h_dev[k] == h_plain[k], k
    for a, b in zip(w_dev, w_plain):
        np.testing.assert_array_equal(a, b)


def _small_run(n):
    """``(events, labels, trainer)``: n samples of 20 steps x 12 channels, a dense S3GD network,
    ``device_data=True``."""
    d = _events(n=n, n_steps=20, n_channels=12)
    net = s3gd.Network(12, 8, 3, sparse=False, readout="sum", seed=0)
    return d, np.arange(n) % 3, Trainer(net, net.loss(), Adam(net, 1e-3), batch_size=4, encode=EventBinner(20),
                                        progress=False, device_data=True)


def test_upload_cache_keeps_the_event_set(numpy_backend):
    d, y, tr = _small_run(12)
    tr.fit((d, y), None, epochs=1)
    first = tr._uploads[id(d)][1]
    tr.fit((d, y), None, epochs=2)
    tr.evaluate(d, y)
    assert tr._uploads[id(d)][1] is first                 # uploaded once, reused by fit and evaluate


def test_bad_input_names_the_argument_and_the_fix(numpy_backend):
    d = _events(n=6, n_steps=30)
    enc = EventBinner(30)
    with pytest.raises(TypeError, match=r"events must be an EventData.*LogLatencyEncoder"):
        enc.prepare(d[:])                                 # a NumPy raster, not events
    with pytest.raises(ValueError, match=r"events has 40 time steps.*EventBinner\(n_steps=30\).*rebin"):
        enc.prepare(d.rebin(n_steps=40))
    with pytest.raises(ValueError, match=r"x has 40 time steps"):
        enc(d.rebin(n_steps=40)[[0]])
    with pytest.raises(ValueError, match=r"x must be a binned batch \[B, n_steps, n_channels\]"):
        enc(np.zeros((2, 30)))
    with pytest.raises(TypeError, match=r"not the whole EventData; index it first"):
        enc(d)
    with pytest.raises(TypeError, match=r"batch must be rows of the set prepare\(\) returned.*encode\(x\)"):
        enc.on_device(d[[0, 1]])
    with pytest.raises(ValueError, match=r"the prepared events has 40 time steps"):
        enc.on_device(EventBinner(40).prepare(d.rebin(n_steps=40))[[0]])
    dev = enc.prepare(d)
    with pytest.raises(IndexError, match="rows out of range for 6 samples"):
        dev[[0, 6]]
    with pytest.raises(TypeError, match="rows must be a slice or a 1-D integer index array"):
        dev[np.array([0.5])]
    with pytest.raises(ValueError, match="n_steps"):
        EventBinner(0)
    with pytest.raises(TypeError, match="dtype"):
        EventBinner(10, dtype=np.int32)


def test_trainer_device_data_true_needs_what_the_encoder_takes(numpy_backend):
    d, y, tr = _small_run(8)
    with pytest.raises(ValueError, match=r"an EventData for snnkit.datasets.EventBinner\), got EventBinner and ndarray"):
        tr.fit((d[:], y), None, epochs=1)                 # a binned raster: not what prepare() takes
    tr.device_data = "auto"                               # ... which falls back to the per-batch path
    assert len(tr.fit((d[:], y), None, epochs=1)["train_loss"]) == 1


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["binary", "count"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernel_equals_the_twin_bit_for_bit(cp, mode, dtype):
    """The CUDA kernel against the NumPy twin (and EventData[idx]) on fresh random events: samples
    of up to 40,000 events (several blocks per row), empty ones, late events, random device rows
    with repeats and negatives, batch sizes 1 to 300."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    d = _events(n=400, n_steps=100, n_channels=50, mode=mode, seed=seed, max_events=2000)
    enc = EventBinner(d.n_steps, dtype=dtype)
    dev = enc.prepare(d)
    assert isinstance(dev.cells, cp.ndarray) and len(dev.cells) == d.n_events - d.n_dropped
    offsets, cells = dev.offsets.get(), dev.cells.get()
    rng = np.random.default_rng(seed)
    for B in (1, 7, 128, 300):
        rows = rng.integers(-len(d), len(d), B)
        rows[0] = 1                                       # the largest sample is always in
        got = enc.on_device(dev[cp.asarray(rows)])
        assert isinstance(got, cp.ndarray) and got.dtype == dtype
        norm = rows % len(d)
        twin = bin_batch(offsets, cells, norm, d.n_steps, d.n_channels, mode, dtype)
        assert twin.sum() > 0, seed
        np.testing.assert_array_equal(got.get(), twin, err_msg=f"seed {seed}, B {B}")
        np.testing.assert_array_equal(twin, d[rows].astype(dtype), err_msg=f"seed {seed}, B {B}")
    np.testing.assert_array_equal(enc.on_device(dev[10:50]).get(), d[10:50].astype(dtype))   # a slice


@pytest.mark.gpu
def test_gpu_device_path_trains_like_the_plain_path(cp):
    """On the GPU too the Trainer's device path (events uploaded, batches binned by the kernel) trains
    like the plain one (host rasters uploaded). The rasters are equal bit for bit (the test above); the
    two paths' losses are computed by different calls (value_and_grad on the device path), so the
    weights are compared to float32 round-off, as tests/test_trainer_gpu.py does."""
    (fast, h_dev, w_dev), (_, h_plain, w_plain) = _train(True, "count"), _train(False, "count")
    assert any(isinstance(hit[1].cells, cp.ndarray) for hit in fast._uploads.values())
    assert h_dev["train_loss"] == pytest.approx(h_plain["train_loss"], rel=1e-5)
    for a, b in zip(w_dev, w_plain):
        worst = float(np.abs(a - b).max() / np.abs(b).max())
        print(f"max |w_device - w_plain| / max |w| = {worst:.2e}")
        assert worst < 1e-5
