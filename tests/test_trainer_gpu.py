"""The training loop's device fast path on the GPU: the latency-encoding kernel against its NumPy
twin (bit for bit, fresh random inputs), and a Trainer on device-resident data against the plain
per-batch path (same batches, same kernels: weights and losses to float32 rounding). Numbers are
printed (-s) for the record."""
import numpy as np
import pytest

from snnkit import datasets
from snnkit.bats import latency_encoder
from snnkit.bats.losses import SpikeCountLoss, TTFSCrossEntropy
from snnkit.bats.study import build_network
from snnkit.datasets.encoders import LatencyEncoder, latency
from snnkit.nn import Adam, NonFiniteError, Trainer

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("shape", [(3, 7), (50, 784), (4096, 784), (7, 28, 28)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_latency_kernel_equals_numpy(cp, shape, dtype):
    rng = np.random.default_rng()                      # fresh inputs every run
    x = rng.random(shape).astype(np.float32)
    x[rng.random(shape) < 0.6] = 0                     # MNIST-like: most pixels silent
    x.flat[:3] = 1.0
    ref = latency(x, t_max=0.1, dtype=dtype, to_device=False)
    enc = LatencyEncoder(0.1, dtype)
    xd = enc.prepare(x)
    for got in (enc.on_device(xd), latency(cp.asarray(x), t_max=0.1, dtype=dtype)):
        t = cp.asnumpy(got.times)
        assert t.dtype == dtype and t.shape == ref.times.shape
        np.testing.assert_array_equal(t, ref.times)
        np.testing.assert_array_equal(cp.asnumpy(got.counts), ref.counts)
        assert int(got.overflow.sum()) == 0
    print(f"latency {shape} {np.dtype(dtype).name}: bit-identical ({int(ref.counts.sum())} spikes)")


def test_latency_device_input_is_checked(cp):
    with pytest.raises(ValueError, match="must lie in"):
        latency(cp.asarray(np.array([[0.5, 1.5]], np.float32)))


def _digits(n_train, n_val=64):
    x, y = datasets.load("digits", "train")
    x = np.asarray(x, dtype=np.float32)
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_val], y[n_train:n_train + n_val])


def _trainer(loss, device_data):
    net = build_network("40-10", 64, [0.1, 0.3], [3, 5], 0.13, 0.2, seed=3, init=(-0.3, 1.0))
    return Trainer(net, loss, Adam(net, 0.01), batch_size=32, encode=latency_encoder(0.1), seed=1,
                   progress=False, device_data=device_data)


@pytest.mark.parametrize("loss", [SpikeCountLoss(15, 3), TTFSCrossEntropy(0.02)], ids=["count", "ttfs"])
def test_device_path_matches_plain_path_on_gpu(cp, loss):
    train, val = _digits(128)
    plain, fast = _trainer(loss, False), _trainer(loss, "auto")
    hp = plain.fit(train, val, epochs=1)
    hf = fast.fit(train, val, epochs=1)
    assert fast._uploads and not plain._uploads
    worst = 0.0
    for lp, lf in zip(plain.model.layers, fast.model.layers):
        for k in lp.params:
            a, b = cp.asnumpy(lf.params[k]), cp.asnumpy(lp.params[k])
            worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
    print(f"{type(loss).__name__}: max |w_fast - w_plain| / max|w| = {worst:.2e}; train loss "
          f"{hf['train_loss'][0]:.6f} vs {hp['train_loss'][0]:.6f}; val acc {hf['val_acc'][0]:.4f} vs "
          f"{hp['val_acc'][0]:.4f}")
    assert worst < 1e-5
    assert hf["train_loss"][0] == pytest.approx(hp["train_loss"][0], rel=1e-5)
    assert hf["train_acc"][0] == pytest.approx(hp["train_acc"][0], abs=1 / 128 + 1e-12)
    assert hf["val_loss"][0] == pytest.approx(hp["val_loss"][0], rel=1e-5)


def test_device_path_catches_nan_on_gpu(cp):
    class Poisoned(SpikeCountLoss):
        calls = 0

        def value_and_grad(self, out, labels):
            v, g = super().value_and_grad(out, labels)
            Poisoned.calls += 1
            return (v, g * np.nan) if Poisoned.calls == 2 else (v, g)

    tr = _trainer(Poisoned(15, 3), "auto")
    with pytest.raises(NonFiniteError, match="gradient of the loss is NaN"):
        tr.fit(_digits(128)[0], None, epochs=1)
    assert tr.step_count == 1
    for layer in tr.model.layers:
        for w in layer.params.values():
            assert bool(cp.isfinite(w).all())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nonfinite_kernel_equals_numpy(cp, dtype):
    """The per-step finiteness count (one launch per array) against its NumPy twin, on fresh random
    arrays with NaN/+-Inf sprinkled in, the dtype's largest finite values (not counted) and strided
    views; then the whole step read-back against the NumPy path."""
    from snnkit.nn.trainer import _count_nonfinite, _nonfinite_kernel, _step_stats
    rng = np.random.default_rng()                      # fresh inputs every run
    arrays = []
    for shape in [(1,), (7, 3), (200, 784), (256, 100, 40)]:
        a = rng.standard_normal(shape).astype(dtype)
        a[rng.random(shape) < 0.05] = np.finfo(dtype).max
        for bad in (np.nan, np.inf, -np.inf):
            a[rng.random(shape) < rng.choice([0, 1e-4, 1e-2])] = bad
        arrays += [a, a[..., ::2], a.T]
    out = cp.zeros(len(arrays), cp.float64)
    for i, a in enumerate(arrays):
        _nonfinite_kernel()(cp.asarray(a), out=out[i])
    views = [cp.asarray(arrays[i]) for i in range(0, len(arrays), 3)]
    got_views = cp.zeros(2 * len(views), cp.float64)
    for i, v in enumerate(views):                      # strided device views, not host copies
        _nonfinite_kernel()(v[..., ::2], out=got_views[2 * i])
        _nonfinite_kernel()(v.T, out=got_views[2 * i + 1])
    want = [_count_nonfinite(a) for a in arrays]
    assert cp.asnumpy(out).tolist() == want
    assert cp.asnumpy(got_views).tolist() == [w for k, w in enumerate(want) if k % 3]
    ok = [cp.asarray(a) for a in arrays if _count_nonfinite(a) == 0] or [cp.zeros(3, dtype)]
    bad = [cp.asarray(a) for a in arrays if _count_nonfinite(a) > 0]
    for grads, params in [(ok, ok), (ok + bad[:1], ok), (ok, bad[-1:] + ok)]:
        on_gpu = _step_stats(cp.asarray(1.25, cp.float32), cp.asarray(7), grads, params)
        on_cpu = _step_stats(np.float32(1.25), np.int64(7), [cp.asnumpy(g) for g in grads],
                             [cp.asnumpy(p) for p in params])
        assert on_gpu == on_cpu
    print(f"non-finite count {np.dtype(dtype).name}: {len(arrays)} arrays + {2 * len(views)} device views "
          f"equal to NumPy (counts {want})")
