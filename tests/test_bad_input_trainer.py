"""Issue 15, the Trainer: data that do not match, resume rules, checkpoints validated as a whole
before anything is assigned, unreadable checkpoint files, the shared label check."""
import json

import numpy as np
import pytest

from snnkit import nn
from snnkit.nn.trainer import CheckpointError
from test_nn import Linear          # the softmax-regression layer of the shared-machinery tests

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _data(n=60, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 5))
    return x, (x[:, 0] > 0).astype(np.int64)


def _trainer(model=None, opt=None, **kw):
    model = model or nn.Sequential(Linear(5, 2))
    opt = opt or nn.Adam(model, lr=0.01)
    return nn.Trainer(model, nn.SoftmaxCrossEntropy(), opt, **{"batch_size": 20, "progress": False, **kw})


def _checkpoint(tmp_path, model=None, **kw):
    ck = tmp_path / "ck.npz"
    t = _trainer(model, checkpoint=ck, **kw)
    t.fit(_data(), epochs=1)
    return ck


def test_x_longer_than_y_is_refused_not_truncated():
    x, y = _data()
    with pytest.raises(ValueError, match="train: x has 60 samples but y has 59 labels"):
        _trainer().fit((x, y[:-1]), epochs=1)
    with pytest.raises(ValueError, match="val: x has 60 samples but y has 10"):
        _trainer().fit((x, y), (x, y[:10]), epochs=1)


def test_empty_training_set_is_a_clear_error():
    with pytest.raises(ValueError, match=r"train is empty \(0 samples\)"):
        _trainer().fit((np.zeros((0, 5)), np.zeros(0, np.int64)), epochs=1)
    with pytest.raises(ValueError, match="empty"):
        _trainer().evaluate(np.zeros((0, 5)), np.zeros(0, np.int64))


@pytest.mark.parametrize("labels,err,msg", [
    (np.array([-3, 1, 0]), ValueError, r"labels must lie in \[0, 2\).*found -3"),
    (np.array([9.7, 1, 0]), TypeError, "labels must have an integer dtype, got float64"),
    (np.array([1.0, 1, 0]), TypeError, "whole numbers: pass labels.astype"),
    (np.array([2, 1, 0]), ValueError, "found 2"),
])
def test_softmax_cross_entropy_validates_labels(labels, err, msg):
    with pytest.raises(err, match=msg):
        nn.SoftmaxCrossEntropy()(np.zeros((3, 2)), labels)


def test_resume_true_without_a_checkpoint_is_an_error(tmp_path):
    t = _trainer(checkpoint=tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="resume=True but there is no checkpoint at .*missing.npz"):
        t.fit(_data(), epochs=1, resume=True)


def test_resume_auto_starts_from_scratch_and_says_so(tmp_path, capsys):
    t = _trainer(checkpoint=tmp_path / "new.npz")
    t.fit(_data(), epochs=1, resume="auto")
    assert "no checkpoint at" in capsys.readouterr().out and (tmp_path / "new.npz").exists()
    t2 = _trainer(checkpoint=tmp_path / "new.npz")
    t2.fit(_data(), epochs=2, resume="auto")                    # now it exists: continues at epoch 1
    assert t2.history["epoch"] == [1, 2]


@pytest.mark.parametrize("change,msg", [
    (dict(opt=lambda m: nn.Adam(m, lr=0.02)), r"written with the optimizer Adam\(lr=0.01.*this Trainer has Adam\(lr=0.02"),
    (dict(opt=lambda m: nn.SGD(m, lr=0.01, momentum=0.9)), r"optimizer Adam\(.*this Trainer has SGD"),
    (dict(seed=4), "belongs to a run with seed=0; this Trainer has seed=4"),
])
def test_resume_with_other_settings_is_an_error(tmp_path, change, msg):
    ck = _checkpoint(tmp_path)
    model = nn.Sequential(Linear(5, 2, seed=7))
    w0 = model.layers[0].params["weight"].copy()
    opt = change.pop("opt", lambda m: nn.Adam(m, lr=0.01))(model)
    t = _trainer(model, opt, checkpoint=ck, **change)
    with pytest.raises(CheckpointError, match=msg):
        t.fit(_data(), epochs=2, resume=True)
    np.testing.assert_array_equal(model.layers[0].params["weight"], w0)      # nothing was assigned
    assert t.epoch == 0


def test_adam_state_does_not_load_into_sgd_even_without_settings(tmp_path):
    ck = _checkpoint(tmp_path)
    # an older checkpoint without the optimizer's settings: the state itself still tells
    with np.load(ck) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(bytes(d["meta"]).decode())
    meta.pop("optimizer")
    d["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(ck, **d)
    model = nn.Sequential(Linear(5, 2))
    t = _trainer(model, nn.SGD(model, lr=0.01, momentum=0.9), checkpoint=ck)
    with pytest.raises(CheckpointError, match="optimizer state 'm', which SGD does not have"):
        t.load(ck)


def test_weights_only_starts_a_new_run_from_the_weights(tmp_path):
    ck = _checkpoint(tmp_path)
    model = nn.Sequential(Linear(5, 2, seed=9))
    t = _trainer(model, nn.SGD(model, lr=0.5), seed=3)
    t.load(ck, weights_only=True)
    with np.load(ck) as z:
        np.testing.assert_array_equal(model.layers[0].params["weight"], z["param/0/weight"])
    assert (t.epoch, t.step_count, t.opt.t, t.opt.lr) == (0, 0, 0, 0.5)


def test_a_smaller_checkpoint_does_not_load_into_a_larger_model(tmp_path):
    # the probe: a 1-layer checkpoint loaded into a 2-layer network and left layer 2 random
    ck = _checkpoint(tmp_path)
    model = nn.Sequential(Linear(5, 2), Linear(2, 2, seed=5))
    with pytest.raises(CheckpointError, match=r"the model has .*param 'weight' of layer 1 \(Linear\) that the "
                                              "checkpoint lacks.*architecture differs"):
        _trainer(model).load(ck)


def test_a_mismatching_readout_leaves_every_layer_untouched(tmp_path):
    # the probe: layers 0 and 1 were overwritten before the readout's shape raised
    ck = _checkpoint(tmp_path, nn.Sequential(Linear(5, 4), Linear(4, 4), Linear(4, 2)))
    model = nn.Sequential(Linear(5, 4, seed=3), Linear(4, 4, seed=4), Linear(4, 3, seed=5))
    before = [l.params["weight"].copy() for l in model.layers]
    with pytest.raises(CheckpointError, match=r"param 'weight' of layer 2 \(Linear\) has shape \(4, 2\), the model "
                                              r"has \(4, 3\); the architecture differs"):
        _trainer(model).load(ck)
    for l, w in zip(model.layers, before):
        np.testing.assert_array_equal(l.params["weight"], w)


def _save_with(fn):
    def write(p):
        with open(p, "wb") as f:          # a file object: np.save must not add its own suffix
            fn(f)
    return write


@pytest.mark.parametrize("write,msg", [
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "not a valid snnkit checkpoint"),
    (lambda p: p.write_bytes(b""), "not a valid snnkit checkpoint"),
    (_save_with(lambda f: np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)), "pickled Python objects"),
    (_save_with(lambda f: np.savez(f, w=np.ones(3))), "no 'meta' entry"),
    (_save_with(lambda f: np.save(f, np.ones(3))), "single array"),
])
def test_foreign_or_corrupt_checkpoint_files_are_named(tmp_path, write, msg):
    p = tmp_path / "bad.npz"
    write(p)
    with pytest.raises(CheckpointError, match=str(p)) as e:
        _trainer().load(p)
    assert msg in str(e.value)


def test_truncated_checkpoint_is_named(tmp_path):
    ck = _checkpoint(tmp_path)
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{ck} is not a valid snnkit checkpoint.*corrupt, truncated"):
        _trainer().load(ck)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_update_that_overflows_the_weights_is_named():
    class Overflowing(nn.SGD):                 # an update that overflows from finite gradients
        def _update(self, key, p, g):
            p -= self.lr * g * 1e308 * 1e308
    model = nn.Sequential(Linear(5, 2))
    t = _trainer(model, Overflowing(model, lr=1.0))
    with pytest.raises(nn.NonFiniteError, match="became NaN/Inf after the optimizer update of step 0.*Lower the"):
        t.fit(_data(), epochs=1)


@pytest.mark.parametrize("kw,msg", [(dict(batch_size=0), "batch_size must be >= 1"),
                                    (dict(batch_size=2.5), "batch_size must be an integer"),
                                    (dict(patience=0), "patience must be >= 1"),
                                    (dict(min_delta=np.nan), "min_delta must be a finite number")])
def test_trainer_settings(kw, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        _trainer(**kw)


@pytest.mark.parametrize("make,msg", [(lambda m: nn.Adam(m, lr=np.inf), "lr must be a finite number"),
                                      (lambda m: nn.Adam(m, lr=np.nan), "lr must be a finite number"),
                                      (lambda m: nn.Adam(m, betas=(0.9, 1.0)), r"betas\[1\] must lie in \[0, 1\)"),
                                      (lambda m: nn.SGD(m, lr=0.1, momentum=-0.5), "momentum must lie in")])
def test_optimizer_settings(make, msg):
    with pytest.raises(ValueError, match=msg):
        make(nn.Sequential(Linear(5, 2)))
