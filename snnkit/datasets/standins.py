"""Synthetic stand-ins with the shapes of the real data sets, for machines that cannot get them.

A stand-in is only ever used when asked for (``load(..., stand_in=True)`` or a reproduction's
``dataset_stand_in`` parameter), and everything built from it is labelled: the Dataset's name
ends in ``(synthetic stand-in)``, ``.stand_in`` is True and its ``info`` says so. The numbers a
stand-in gives measure the code (shapes, speed, that training learns), not the paper's claim.

* images (MNIST, Fashion-MNIST, EMNIST): 28x28 in [0, 1] on the 1/255 grid. Class c is digit
  ``c % 10`` of scikit-learn's 8x8 set, upsampled to 20x20, under one of five fixed transforms
  (``c // 10``: none, transpose, left-right flip, up-down flip, 180 degree turn), shifted by up to
  2 pixels and scaled in brightness: learnable, but not trivially.
* SHD: 700 channels, 20 classes, ~0.5-1 s. Each class is three channel "formant" tracks that drift
  over time; a sample scatters events around its class's tracks with time-warp, channel jitter and
  30% background events.
* N-MNIST: 34x34 sensor, two polarities, three 100 ms saccades; events fall on the bright pixels of
  an image stand-in, shifted by each saccade.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

TRANSFORMS = (lambda a: a, lambda a: a.transpose(0, 2, 1), lambda a: a[:, :, ::-1],
              lambda a: a[:, ::-1, :], lambda a: a[:, ::-1, ::-1])


@lru_cache(maxsize=1)
def _digit_bases():
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    d = load_digits()
    img = zoom(d.images / 16.0, (1, 2.5, 2.5), order=1).clip(0, 1)
    return img.astype(np.float32), d.target


def _balanced_labels(n, n_classes, rng):
    return rng.permutation(np.arange(n) % n_classes)


def images(n: int, n_classes: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """(x [n, size*size] float32 in [0, 1], y [n]) image stand-in."""
    if n_classes > 10 * len(TRANSFORMS):
        raise ValueError(f"n_classes must be <= {10 * len(TRANSFORMS)} for the image stand-in")
    rng = np.random.default_rng(seed)
    base, target = _digit_bases()
    y = _balanced_labels(n, n_classes, rng)
    pools = [np.flatnonzero(target == d) for d in range(10)]
    pick = np.array([pools[c % 10][rng.integers(len(pools[c % 10]))] for c in y])
    glyph = base[pick]                                            # [n, 20, 20]
    for k in range(1, len(TRANSFORMS)):
        sel = (y // 10) == k
        glyph[sel] = TRANSFORMS[k](glyph[sel])
    glyph *= rng.uniform(0.75, 1.25, (n, 1, 1)).astype(np.float32)
    out = np.zeros((n, size, size), np.float32)
    off = (size - 20) // 2
    sx, sy = rng.integers(-2, 3, n), rng.integers(-2, 3, n)
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            sel = (sx == dx) & (sy == dy)
            out[sel, off + dy:off + dy + 20, off + dx:off + dx + 20] = glyph[sel]
    out = np.round(out.clip(0, 1) * 255) / 255
    return out.reshape(n, -1).astype(np.float32), y.astype(np.int64)


def shd(n: int, seed: int, n_channels: int = 700, n_classes: int = 20, events_per_sample: int = 1500):
    """(offsets, times s, channels, labels) SHD stand-in."""
    cls = np.random.default_rng(12345)                           # class templates: fixed for all splits
    centre = cls.uniform(100, n_channels - 100, (n_classes, 3))
    swing = cls.uniform(30, 120, (n_classes, 3))
    freq = cls.uniform(0.5, 2.5, (n_classes, 3))
    phase = cls.uniform(0, 2 * np.pi, (n_classes, 3))
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, n_classes, rng)
    counts = rng.poisson(events_per_sample, n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    E = int(offsets[-1])
    row = np.repeat(np.arange(n), counts)
    c = y[row]
    dur = rng.uniform(0.5, 1.0, n)[row]
    t = rng.uniform(0, 1, E) * dur
    k = rng.integers(0, 3, E)
    warp = rng.uniform(0.9, 1.1, n)[row]
    ch = centre[c, k] + swing[c, k] * np.sin(2 * np.pi * freq[c, k] * t * warp + phase[c, k])
    ch += rng.normal(0, 25, E) + rng.normal(0, 30, n)[row]
    noise = rng.random(E) < 0.3
    ch[noise] = rng.uniform(0, n_channels, int(noise.sum()))
    ch = np.clip(np.round(ch), 0, n_channels - 1).astype(np.int32)
    order = np.lexsort((t, row))                                 # time-sorted within each sample
    return offsets, t[order], ch[order], y.astype(np.int64)


def nmnist(n: int, seed: int, events_per_saccade: int = 300):
    """(offsets, times s, channels with polarity (p*34*34 + y*34 + x), labels) N-MNIST stand-in."""
    img, y = images(n, 10, seed + 1, size=34)
    rng = np.random.default_rng(seed)
    img = img.reshape(n, 34, 34)
    moves = ((0, 0), (2, 2), (-2, 2))
    offs, ts, chs = [0], [], []
    for i in range(n):
        w = img[i].ravel()
        p_pix = w / w.sum()
        t_i, c_i = [], []
        for s, (mx, my) in enumerate(moves):
            m = rng.poisson(events_per_saccade)
            pix = rng.choice(w.size, m, p=p_pix)
            yy = np.clip(pix // 34 + my, 0, 33)
            xx = np.clip(pix % 34 + mx, 0, 33)
            pol = rng.integers(0, 2, m)
            t_i.append(rng.uniform(0.1 * s, 0.1 * (s + 1), m))
            c_i.append(pol * 34 * 34 + yy * 34 + xx)
        t_i, c_i = np.concatenate(t_i), np.concatenate(c_i)
        o = np.argsort(t_i, kind="stable")
        ts.append(t_i[o])
        chs.append(c_i[o])
        offs.append(offs[-1] + len(t_i))
    return np.asarray(offs, np.int64), np.concatenate(ts), np.concatenate(chs).astype(np.int32), y
