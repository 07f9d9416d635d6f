"""Data sets that need no network.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), pixel values
  scaled to [0, 1], flattened to 64 features. A fixed stratified split (seed 0):
  train 70% / validation 10% / test 20%.
* ``yinyang``: the yin-yang data set of Kriener et al. (2021), 3 classes (yin, yang, dot) in a
  disc of radius 0.5; features (x, y, 1 - x, 1 - y). Generated deterministically by rejection
  sampling with the original sizes and seeds (train 5000 / seed 42, validation 1000 / seed 41,
  test 1000 / seed 40), so it is identical on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SPLITS = ("train", "validation", "test")


@dataclass
class Dataset:
    """Features ``x`` [n, ...] (float32 in [0, 1] for images) and integer labels ``y`` [n].
    Unpacks as ``x, y = load(...)``."""
    x: np.ndarray
    y: np.ndarray
    name: str
    split: str
    n_classes: int
    shape: tuple = ()                 # per-sample image shape (e.g. (8, 8)), () if not an image
    class_names: list = field(default_factory=list)
    info: str = ""

    def __iter__(self):
        return iter((self.x, self.y))

    def __len__(self):
        return len(self.y)

    def __repr__(self):
        return (f"Dataset({self.name!r}, split={self.split!r}, n={len(self)}, features={self.x.shape[1:]}, "
                f"classes={self.n_classes})")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    r = np.random.default_rng(0)
    parts = {s: [] for s in SPLITS}
    for c in range(10):                          # stratified, so every split has every digit
        idx = r.permutation(np.flatnonzero(y == c))
        n_tr = int(round(0.7 * len(idx)))
        n_va = int(round(0.1 * len(idx)))
        parts["train"].append(idx[:n_tr])
        parts["validation"].append(idx[n_tr:n_tr + n_va])
        parts["test"].append(idx[n_tr + n_va:])
    return x, y, {s: np.sort(np.concatenate(v)) for s, v in parts.items()}


def digits(split="train") -> Dataset:
    _check_split(split)
    x, y, parts = _digits_arrays()
    i = parts[split]
    return Dataset(x[i].copy(), y[i].copy(), "digits", split, 10, (8, 8), [str(c) for c in range(10)],
                   "scikit-learn 8x8 digits, pixels / 16, stratified 70/10/20 split (seed 0)")


class _YinYang:
    """Kriener et al. (2021) generator, reimplemented: same rejection sampling, same sizes/seeds."""

    def __init__(self, r_small=0.1, r_big=0.5):
        self.r_small, self.r_big = r_small, r_big

    def which_class(self, x, y):
        d_right = np.hypot(x - 1.5 * self.r_big, y - self.r_big)
        d_left = np.hypot(x - 0.5 * self.r_big, y - self.r_big)
        is_yin = (d_right <= self.r_small or (self.r_small < d_left <= 0.5 * self.r_big)
                  or (y > self.r_big and d_right > 0.5 * self.r_big))
        if d_right < self.r_small or d_left < self.r_small:
            return 2
        return int(is_yin)

    def sample(self, size, seed):
        rs = np.random.RandomState(seed)
        vals, cs = np.empty((size, 4)), np.empty(size, dtype=np.int64)
        for i in range(size):
            goal = rs.randint(3)
            while True:
                x, y = rs.rand(2) * 2.0 * self.r_big
                if np.hypot(x - self.r_big, y - self.r_big) > self.r_big:
                    continue
                c = self.which_class(x, y)
                if c == goal:
                    break
            vals[i] = (x, y, 1.0 - x, 1.0 - y)
            cs[i] = c
        return vals.astype(np.float32), cs


_YY = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


@lru_cache(maxsize=3)
def _yinyang_arrays(split):
    size, seed = _YY[split]
    return _YinYang().sample(size, seed)


def yinyang(split="train") -> Dataset:
    _check_split(split)
    x, y = _yinyang_arrays(split)
    return Dataset(x.copy(), y.copy(), "yinyang", split, 3, (), ["yin", "yang", "dot"],
                   "Kriener et al. 2021 yin-yang, features (x, y, 1-x, 1-y), generated deterministically")
