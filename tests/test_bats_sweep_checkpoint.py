"""snnkit.bats.study.sweep(checkpoint=...): a sweep cut short resumes where it stopped (issue 16)."""
import numpy as np
import pytest

from snnkit import datasets
from snnkit.bats.layers import latency_encoder
from snnkit.bats.losses import SpikeCountLoss
from snnkit.bats.study import build_network, sweep
from snnkit.nn import Adam, Trainer


def _setup():
    x, y = datasets.load("digits", "train")
    xt, yt = datasets.load("digits", "test")
    x, y, xt, yt = x[:96], y[:96], xt[:40], yt[:40]
    build = lambda dt, seed: build_network("12-10", 64, [0.1, 0.3], [3, 5], 0.13, 0.2, dt=dt, seed=seed,
                                           init=(-0.3, 1.0))
    kw = dict(epochs=2, encode=latency_encoder(0.1), loss_fn=SpikeCountLoss(5, 1),
              optimizer=lambda m: Adam(m, 0.01), batch_size=16, t_grid=np.linspace(0, 0.2, 9), target=5)
    return build, (x, y), (xt, yt), kw


def _weights(model):
    return [np.asarray(p).copy() for layer in model.layers for p in getattr(layer, "params", {}).values()]


def test_a_cut_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    build, train, test, kw = _setup()
    dts = [None, 0.01]
    ref_rows, ref_lat, ref_models = sweep(dts, build, train, test, keep_models=True, **kw)
    # session 1 is cut: the first dt finished, the second stopped after its first epoch
    sweep([None], build, train, test, checkpoint=tmp_path, **kw)
    sweep([0.01], build, train, test, checkpoint=tmp_path, **{**kw, "epochs": 1})
    (tmp_path / "dt_10ms_seed0.json").unlink()                 # as if cut before the dt finished
    rows, lat, models = sweep(dts, build, train, test, checkpoint=tmp_path, keep_models=True, **kw)
    for a, b in zip(ref_rows, rows):
        assert {k: v for k, v in a.items() if k != "train_seconds"} == \
            {k: v for k, v in b.items() if k != "train_seconds"}
    for d in dts:
        np.testing.assert_allclose(lat[d], ref_lat[d])
        for wa, wb in zip(_weights(ref_models[d]), _weights(models[d])):
            np.testing.assert_array_equal(wa, wb)


def test_a_finished_dt_is_loaded_not_trained_again(tmp_path, monkeypatch):
    build, train, test, kw = _setup()
    rows1, _, m1 = sweep([None], build, train, test, checkpoint=tmp_path, keep_models=True, **kw)

    def no_training(*a, **k):
        raise AssertionError("a finished dt was trained again")
    monkeypatch.setattr(Trainer, "fit", no_training)
    rows2, _, m2 = sweep([None], build, train, test, checkpoint=tmp_path, keep_models=True, **kw)
    assert rows1 == rows2
    for wa, wb in zip(_weights(m1[None]), _weights(m2[None])):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="epochs"):
        sweep([None], build, train, test, checkpoint=tmp_path, **{**kw, "epochs": 3})
