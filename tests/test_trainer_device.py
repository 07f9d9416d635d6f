"""The Trainer's device fast path (data uploaded once, batches encoded on the device, one readout
per step) must train exactly like the plain per-batch path. On the CPU ``device_data=True`` runs the
same code on NumPy, so the two paths are compared bit for bit here; tests/test_trainer_gpu.py
compares them on the GPU."""
import numpy as np
import pytest

from snnkit import datasets
from snnkit.bats import latency_encoder
from snnkit.bats.losses import SpikeCountLoss, TTFSCrossEntropy
from snnkit.bats.study import build_network
from snnkit.datasets.encoders import LatencyEncoder, latency
from snnkit.nn import Adam, NonFiniteError, Trainer


def _digits(n_train=240, n_val=60):
    x, y = datasets.load("digits", "train")
    x = np.asarray(x, dtype=np.float32)
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_val], y[n_train:n_train + n_val])


def _trainer(loss, device_data, seed=0, **kw):
    net = build_network("16-10", 64, [0.1, 0.3], [3, 5], 0.13, 0.2, seed=seed, init=(-0.3, 1.0))
    return Trainer(net, loss, Adam(net, 0.01), batch_size=32, encode=latency_encoder(0.1), seed=seed,
                   progress=False, device_data=device_data, **kw)


@pytest.mark.parametrize("loss", [SpikeCountLoss(15, 3), TTFSCrossEntropy(0.02)], ids=["count", "ttfs"])
def test_device_path_trains_like_the_plain_path(numpy_backend, loss):
    train, val = _digits()
    plain, fast = _trainer(loss, False), _trainer(loss, True)
    h_plain = plain.fit(train, val, epochs=2)
    h_fast = fast.fit(train, val, epochs=2)
    assert fast._uploads, "the fast path did not run"
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        np.testing.assert_allclose(h_fast[k], h_plain[k], rtol=1e-12, err_msg=k)
    for lp, lf in zip(plain.model.layers, fast.model.layers):
        for k in lp.params:
            np.testing.assert_array_equal(lf.params[k], lp.params[k])
    assert fast.evaluate(*val) == pytest.approx(plain.evaluate(*val), rel=1e-12)


def test_device_path_resumes_mid_epoch_exactly(numpy_backend, tmp_path):
    train, val = _digits()
    whole = _trainer(SpikeCountLoss(15, 3), True)
    whole.fit(train, val, epochs=2)
    ck = tmp_path / "ck.npz"
    a = _trainer(SpikeCountLoss(15, 3), True, checkpoint=ck, checkpoint_every=3)
    a.fit(train, val, epochs=1)
    a.fit(train, val, epochs=2)       # one more epoch; the file now also holds mid-epoch states
    b = _trainer(SpikeCountLoss(15, 3), True, checkpoint=ck)
    b.load(ck)
    assert b.epoch == 2
    for lw, lb in zip(whole.model.layers, b.model.layers):
        for k in lw.params:
            np.testing.assert_array_equal(lb.params[k], lw.params[k])
    # stop in the middle of epoch 2 and resume from the mid-epoch checkpoint
    ck2 = tmp_path / "mid.npz"
    c = _trainer(SpikeCountLoss(15, 3), True, checkpoint=ck2, checkpoint_every=4)
    c.fit(train, val, epochs=1)
    calls = {"n": 0}
    step = c._train_step_device

    def stop_after_five(*args):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return step(*args)
    c._train_step_device = stop_after_five
    with pytest.raises(KeyboardInterrupt):
        c.fit(train, val, epochs=2)
    d = _trainer(SpikeCountLoss(15, 3), True, checkpoint=ck2)
    d.fit(train, val, epochs=2, resume=True)
    for lw, ld in zip(whole.model.layers, d.model.layers):
        for k in lw.params:
            np.testing.assert_array_equal(ld.params[k], lw.params[k])
    assert d.history["train_loss"] == pytest.approx(whole.history["train_loss"], rel=1e-12)


class _Poisoned(SpikeCountLoss):
    """A count loss whose value (``what='loss'``) or gradient (``'grad'``) turns NaN at step 3."""

    def __init__(self, what):
        super().__init__(15, 3)
        self.what, self.calls = what, 0

    def value_and_grad(self, out, labels):
        v, g = super().value_and_grad(out, labels)
        self.calls += 1
        if self.calls == 3:
            v, g = (v * np.nan, g) if self.what == "loss" else (v, g * np.nan)
        return v, g


@pytest.mark.parametrize("what,match", [("loss", "loss itself overflowed"),
                                        ("grad", "gradient of the loss is NaN")])
def test_device_path_catches_nan_before_the_update(numpy_backend, what, match):
    train, val = _digits()
    tr = _trainer(_Poisoned(what), True)
    with pytest.raises(NonFiniteError, match=match):
        tr.fit(train, val, epochs=1)
    assert tr.step_count == 2             # the bad third step was not applied
    for layer in tr.model.layers:
        for w in layer.params.values():
            assert np.isfinite(w).all()


def test_device_path_checks_the_data_once_with_a_clear_error(numpy_backend):
    train, val = _digits()
    x_bad = train[0].copy()
    x_bad[3, 5] = 1.5
    with pytest.raises(ValueError, match="the training features must lie in"):
        _trainer(SpikeCountLoss(15, 3), True).fit((x_bad, train[1]), None, epochs=1)
    with pytest.raises(ValueError, match="x has 240 samples but y has 10"):
        _trainer(SpikeCountLoss(15, 3), True).fit((train[0], train[1][:10]), None, epochs=1)


def test_device_data_true_needs_a_device_encoder(numpy_backend):
    train, _ = _digits()
    net = build_network("16-10", 64, [0.1, 0.3], [3, 5], 0.13, 0.2, seed=0)
    tr = Trainer(net, SpikeCountLoss(), Adam(net, 0.01), encode=lambda x, r: latency(x), progress=False,
                 device_data=True)
    with pytest.raises(ValueError, match="prepare\\(\\) and on_device\\(\\)"):
        tr.fit(train, None, epochs=1)
    with pytest.raises(ValueError, match="device_data must be"):
        Trainer(net, SpikeCountLoss(), Adam(net, 0.01), device_data="yes")


def test_auto_is_off_on_numpy(numpy_backend):
    train, _ = _digits()
    tr = _trainer(SpikeCountLoss(15, 3), "auto")
    tr.fit(train, None, epochs=1)
    assert not tr._uploads


def test_latency_encoder_on_device_equals_latency(numpy_backend):
    rng = np.random.default_rng(7)
    x = rng.random((9, 30)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0
    x[0, :3] = 1
    for dtype in (np.float32, np.float64):
        enc = LatencyEncoder(0.1, dtype)
        got = enc.on_device(enc.prepare(x)[2:7])
        ref = latency(x[2:7], t_max=0.1, dtype=dtype)
        np.testing.assert_array_equal(got.times, ref.times)
        np.testing.assert_array_equal(got.counts, ref.counts)
        assert got.times.dtype == dtype


def test_count_nonfinite_counts_nan_and_inf_only():
    from snnkit.nn.trainer import _count_nonfinite, _step_stats
    a = np.full((5, 7), 3e38, np.float32)           # finite, but a plain sum of it overflows to Inf
    assert _count_nonfinite(a) == 0
    a[1, 2], a[4, 0], a[0, 6] = np.nan, np.inf, -np.inf
    assert _count_nonfinite(a) == 3
    assert _count_nonfinite(a[::2, ::3]) == 2          # a strided view (rows 0, 2, 4; columns 0, 3, 6): -inf, inf
    ok = np.zeros(3, np.float32)
    assert _step_stats(np.float32(1.5), np.int64(4), [ok], [ok]) == (1.5, 4, True, True, True)
    assert _step_stats(np.float32(1.5), np.int64(4), [ok, a], [ok]) == (1.5, 4, True, False, True)
    assert _step_stats(np.float32(np.inf), np.int64(4), [ok], [a]) == (np.inf, 4, False, True, False)


class _BreaksWeights(Adam):
    """Adam whose second update leaves one weight Inf (finite gradients, finite loss)."""

    def step(self):
        super().step()
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            self.layers[-1].params["weight"].flat[0] = np.inf


def test_device_path_names_a_weight_that_became_nonfinite(numpy_backend):
    # an S3GD network: its forward does not check the weights (a NaN/Inf weight would silence it),
    # so the step's finiteness check of the parameters is what catches this
    from snnkit import s3gd
    from snnkit.datasets import LogLatencyEncoder
    train, _ = _digits()
    x = np.repeat(train[0], 13, axis=1)[:, :784] / max(1.0, float(train[0].max()))   # 8x8 digits widened to 784
    net = s3gd.Network(784, 16, 10, 0.9, delta=0.2, sparse=True, seed=0, weight_scale=1.9, readout_scale=1.9)
    tr = Trainer(net, net.loss(), _BreaksWeights(net, 1e-3), batch_size=32, encode=LogLatencyEncoder(20),
                 progress=False, device_data=True)
    with pytest.raises(NonFiniteError, match="became NaN/Inf after the optimizer update"):
        tr.fit((x, train[1]), None, epochs=1)
    assert tr.step_count == 2                # caught by the next step's check, before its update
