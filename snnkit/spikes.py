"""Spike-train containers shared by the methods.

Event-based methods (BATS) carry spikes as *times*: ``times[B, N, S]`` sorted per neuron and
padded with ``+inf``, plus ``counts[B, N]`` (how many slots are real). A neuron that would have
fired more than ``S`` times cannot store the extra spikes; they are counted in ``overflow[B, N]``
rather than silently lost, so a learner (and the tests) can see when ``max_spikes`` is too small.

Discrete-time methods (S3GD, STBP) carry spikes as *rasters*: 0/1 arrays ``[B, T, N]``.
:meth:`SpikeTrains.to_raster` and :func:`from_raster` convert between the two.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_numpy, xp_of

__all__ = ["SpikeTrains", "from_raster", "from_lists"]


@dataclass
class SpikeTrains:
    times: object            # [B, N, S] float, sorted per neuron, +inf padded
    counts: object           # [B, N] int32, number of valid slots
    overflow: object = None  # [B, N] int32, spikes that did not fit into S slots (None = not tracked)

    @property
    def shape(self):
        return tuple(self.times.shape)

    @property
    def batch_size(self) -> int:
        return int(self.times.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.times.shape[1])

    @property
    def max_spikes(self) -> int:
        return int(self.times.shape[2])

    def n_spikes(self) -> int:
        return int(to_numpy(self.counts).sum())

    def n_overflow(self) -> int:
        return 0 if self.overflow is None else int(to_numpy(self.overflow).sum())

    def first_times(self):
        """Time of the first spike of each neuron, ``+inf`` if silent: ``[B, N]``."""
        return self.times[:, :, 0]

    def to_numpy(self) -> "SpikeTrains":
        return SpikeTrains(to_numpy(self.times), to_numpy(self.counts),
                           None if self.overflow is None else to_numpy(self.overflow))

    def validate(self, name: str = "spikes") -> "SpikeTrains":
        """Raise ValueError naming ``name`` when the container is malformed."""
        xp = xp_of(self.times)
        t, c = self.times, self.counts
        if t.ndim != 3:
            raise ValueError(f"{name}.times must be [batch, neurons, slots]; got shape {tuple(t.shape)}. "
                             "Add a slot axis for single spikes: times[..., None].")
        if tuple(c.shape) != tuple(t.shape[:2]):
            raise ValueError(f"{name}.counts must have shape {tuple(t.shape[:2])} (batch, neurons); "
                             f"got {tuple(c.shape)}")
        if bool(xp.isnan(t).any()):
            raise ValueError(f"{name}.times contains NaN; use +inf for 'no spike'.")
        if t.shape[2] > 1 and bool((t[:, :, 1:] < t[:, :, :-1]).any()):
            raise ValueError(f"{name}.times must be sorted in time along the last axis; "
                             "sort them first (xp.sort(times, axis=2)).")
        s = t.shape[2]
        finite = xp.isfinite(t).sum(axis=2)
        if bool((finite != c).any()):
            raise ValueError(f"{name}.counts disagrees with the number of finite times per neuron; "
                             "rebuild counts as isfinite(times).sum(axis=2).")
        if bool((c < 0).any()) or bool((c > s).any()):
            raise ValueError(f"{name}.counts must lie in [0, {s}].")
        return self

    def to_raster(self, dt: float, n_steps: int):
        """0/1 raster ``[B, T, N]`` with spike at step ``floor(t / dt)``; spikes at or beyond
        ``n_steps * dt`` are outside the raster (their number is returned as the second value)."""
        t = to_numpy(self.times)
        B, N, S = t.shape
        raster = np.zeros((B, n_steps, N), dtype=np.float32)
        fin = np.isfinite(t)
        idx = np.floor(np.where(fin, t, 0.0) / dt).astype(np.int64)
        keep = fin & (idx >= 0) & (idx < n_steps)
        b, n, _ = np.nonzero(keep)
        raster[b, idx[keep], n] = 1.0
        return raster, int(fin.sum() - keep.sum())


def from_lists(trains, n_slots: int | None = None, dtype=np.float64) -> SpikeTrains:
    """Build a one-sample-per-entry container from nested lists ``trains[b][n] = [t0, t1, ...]``."""
    B = len(trains)
    N = max(len(tr) for tr in trains) if B else 0
    S = n_slots or max([len(x) for tr in trains for x in tr] + [1])
    times = np.full((B, N, S), np.inf, dtype=dtype)
    counts = np.zeros((B, N), dtype=np.int32)
    overflow = np.zeros((B, N), dtype=np.int32)
    for b, tr in enumerate(trains):
        for n, ts in enumerate(tr):
            ts = sorted(float(v) for v in ts)
            k = min(len(ts), S)
            times[b, n, :k] = ts[:k]
            counts[b, n] = k
            overflow[b, n] = len(ts) - k
    return SpikeTrains(times, counts, overflow)


def from_raster(raster, dt: float, max_spikes: int | None = None, dtype=np.float64) -> SpikeTrains:
    """Spike times ``(step + 0) * dt`` of a 0/1 raster ``[B, T, N]``; extra spikes beyond
    ``max_spikes`` are counted in ``overflow``."""
    r = to_numpy(raster) > 0
    B, T, N = r.shape
    per = r.sum(axis=1)
    S = int(max_spikes or max(int(per.max()) if per.size else 0, 1))
    times = np.full((B, N, S), np.inf, dtype=dtype)
    slot = np.cumsum(r, axis=1) - 1                    # slot index of each spike in its neuron
    b, t, n = np.nonzero(r & (slot < S))
    times[b, n, slot[b, t, n]] = t * dt
    counts = np.minimum(per, S).astype(np.int32)
    return SpikeTrains(times, counts, (per - counts).astype(np.int32))
