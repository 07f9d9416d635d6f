"""Turning analog features x in [0, 1] into spikes.

* ``latency``        (BATS): one spike per feature at t = t_max (1 - x); x == 0 -> no spike.
                     Returns a :class:`~snnkit.spikes.SpikeTrains` with one slot.
* ``log_latency``    (S3GD): spike step = int(tau ln(x / (x - thr))) for x > thr, else none;
                     a raster [B, T, N] with at most one spike per feature, steps >= T dropped
                     (and counted: ``return_dropped=True``).
* ``poisson``        : independent Bernoulli(x * max_prob) per step, raster [B, T, N].
* ``direct``         (STBP): the analog input repeated over T steps, [B, T, ...].
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp
from ..spikes import SpikeTrains


def _features(x, name="x"):
    x = np.asarray(x, dtype=np.float64) if not hasattr(x, "__cuda_array_interface__") else x
    xp = get_xp() if hasattr(x, "__cuda_array_interface__") else np
    if bool(xp.isnan(x).any()):
        raise ValueError(f"{name} contains NaN; encoders expect features in [0, 1].")
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1] (got min {float(x.min())}, max {float(x.max())}); "
                         "scale it first, e.g. x / x.max().")
    return x


def latency(x, t_max=0.1, dtype=np.float32, to_device=True) -> SpikeTrains:
    """One spike per feature at ``t_max * (1 - x)``; zero features stay silent.
    ``x`` is [B, N] (images are flattened)."""
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max}")
    x = np.asarray(_features(x)).reshape(len(x), -1)
    t = np.where(x > 0, t_max * (1.0 - x), np.inf).astype(dtype)[:, :, None]
    counts = np.isfinite(t[:, :, 0]).astype(np.int32)
    if to_device:
        xp = get_xp()
        return SpikeTrains(xp.asarray(t), xp.asarray(counts), xp.zeros_like(xp.asarray(counts)))
    return SpikeTrains(t, counts, np.zeros_like(counts))


def log_latency(x, n_steps=100, tau=20.0, threshold=0.2, dtype=np.float32, return_dropped=False):
    """S3GD's encoding: a spike at step ``int(tau * ln(x / (x - threshold)))`` for x > threshold."""
    x = np.asarray(_features(x)).reshape(len(x), -1)
    out = np.zeros((x.shape[0], n_steps, x.shape[1]), dtype=dtype)
    on = x > threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(on, tau * np.log(np.where(on, x, 1.0) / np.where(on, x - threshold, 1.0)), 0.0)
    step = step.astype(np.int64)
    keep = on & (step < n_steps)
    b, n = np.nonzero(keep)
    out[b, step[keep], n] = 1
    out = get_xp().asarray(out)
    return (out, int(on.sum() - keep.sum())) if return_dropped else out


def poisson(x, n_steps=100, max_prob=1.0, rng=None, dtype=np.float32):
    """Bernoulli spikes with probability ``x * max_prob`` at every step (rate coding)."""
    x = np.asarray(_features(x)).reshape(len(x), -1)
    r = rng if rng is not None else np.random.default_rng(0)
    out = (r.random((x.shape[0], n_steps, x.shape[1])) < (x * max_prob)[:, None, :]).astype(dtype)
    return get_xp().asarray(out)


def direct(x, n_steps=2, time_major=False, dtype=np.float32):
    """The analog input fed at every step: [B, T, ...] (or [T, B, ...] with ``time_major``)."""
    xp = get_xp()
    x = xp.asarray(x, dtype=dtype)
    rep = xp.broadcast_to(x[:, None], (x.shape[0], n_steps) + x.shape[1:])
    if time_major:
        rep = xp.moveaxis(rep, 1, 0)
    return xp.ascontiguousarray(rep)
