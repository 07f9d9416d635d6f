import numpy as np
import pytest

from snnkit import datasets
from snnkit.datasets import load, latency, log_latency, poisson, direct
from snnkit.datasets.embedded import _YinYang


def test_digits_split_is_fixed_and_disjoint():
    parts = {s: load("digits", s) for s in datasets.SPLITS}
    assert sum(len(p) for p in parts.values()) == 1797
    assert len(parts["train"]) > 1200 and len(parts["test"]) > 340
    rows = [set(map(bytes, p.x)) for p in parts.values()]
    # a few 8x8 digit images are exact duplicates in the source data; the splits are by index
    assert all(0 <= x.min() and x.max() <= 1 for x in (p.x for p in parts.values()))
    for p in parts.values():
        assert set(np.unique(p.y)) == set(range(10))
    again = load("digits", "test")
    np.testing.assert_array_equal(again.x, parts["test"].x)
    x, y = parts["train"]
    assert x.shape[1] == 64 and x.dtype == np.float32 and parts["train"].shape == (8, 8)


def test_yinyang_is_deterministic_and_balanced():
    d = load("yinyang", "validation")
    assert d.x.shape == (1000, 4) and d.n_classes == 3
    np.testing.assert_array_equal(d.x, load("yinyang", "validation").x)
    np.testing.assert_allclose(d.x[:, 2], 1 - d.x[:, 0], atol=1e-6)
    counts = np.bincount(d.y, minlength=3) / len(d)
    assert np.all(np.abs(counts - 1 / 3) < 0.05)
    r = np.hypot(d.x[:, 0] - 0.5, d.x[:, 1] - 0.5)
    assert r.max() <= 0.5 + 1e-6


def test_yinyang_classes_at_known_points():
    g = _YinYang()
    assert g.which_class(0.75, 0.5) == 2          # centre of the right dot
    assert g.which_class(0.25, 0.5) == 2          # centre of the left dot
    assert g.which_class(0.5, 0.9) == 1           # upper half, far from the right dot: yin (class 1)
    assert g.which_class(0.5, 0.1) == 0           # lower half: yang


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown data set"):
        load("cifar")
    with pytest.raises(ValueError, match="split must be"):
        load("digits", "dev")


def test_latency_encoding(numpy_backend):
    x = np.array([[0.0, 1.0, 0.25]])
    s = latency(x, t_max=0.1)
    np.testing.assert_allclose(s.times[0, :, 0], [np.inf, 0.0, 0.075], rtol=1e-6)
    np.testing.assert_array_equal(s.counts, [[0, 1, 1]])
    s.validate()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency(np.array([[2.0]]))
    with pytest.raises(ValueError, match="t_max"):
        latency(x, t_max=0)


def test_log_latency_encoding(numpy_backend):
    x = np.array([[0.1, 0.2, 1.0, 0.21]])
    r, dropped = log_latency(x, n_steps=50, return_dropped=True)
    assert r.shape == (1, 50, 4)
    expected = int(20 * np.log(1.0 / 0.8))
    assert r[0, expected, 2] == 1 and r[0, :, 2].sum() == 1
    assert r[0, :, 0].sum() == 0 and r[0, :, 1].sum() == 0      # x <= threshold never spikes
    assert int(20 * np.log(0.21 / 0.01)) >= 50 and dropped == 1  # too late for 50 steps: counted


def test_poisson_and_direct(numpy_backend):
    x = np.full((2, 3), 0.5)
    a = poisson(x, 200, rng=np.random.default_rng(1))
    b = poisson(x, 200, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 0.5) < 0.05
    d = direct(np.ones((2, 1, 4, 4)), n_steps=3, time_major=True)
    assert d.shape == (3, 2, 1, 4, 4)


def test_iterate_batches_depends_only_on_seed_and_epoch():
    a = list(datasets.iterate_batches(10, 3, seed=1, epoch=2))
    b = list(datasets.iterate_batches(10, 3, seed=1, epoch=2))
    assert all((x == y).all() for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert [len(x) for x in a] == [3, 3, 3, 1]
