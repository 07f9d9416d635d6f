"""Spike-train containers shared by the methods.

Event-based methods (BATS) carry spikes as *times*: ``times[B, N, S]`` sorted per neuron and
padded with ``+inf``, plus ``counts[B, N]`` (how many slots are real). A neuron that would have
fired more than ``S`` times cannot store the extra spikes; they are counted in ``overflow[B, N]``
rather than silently lost, so a learner (and the tests) can see when ``max_spikes`` is too small.

Discrete-time methods carry spikes as *rasters* of 0/1: S3GD batch-first ``[B, T, N]``, STBP
time-major ``[T, B, ...]`` (docs/design.md says why). :meth:`SpikeTrains.to_raster` and
:func:`from_raster` convert between times and ``[B, T, N]`` rasters.

Invariant (:meth:`SpikeTrains.validate`, checked where trains enter a layer from outside): times
are real, >= 0 or +inf (never NaN or -inf), sorted per neuron, and ``counts`` equals the number of
finite slots of each neuron. ``map_shape`` optionally says which (height, width, channels) map the
flattened neuron axis holds (n = (h * W + w) * C + c), so that a convolution or pooling layer can
check the layout by shape, not only by the number of neurons.
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
    map_shape: tuple | None = None   # (H, W, C) of the flattened neuron axis, when it is a feature map
    grid: float | None = None        # the dt grid the times lie on, set by a BATS layer on a grid: a layer on
                                     # the same grid takes them as they are (they are not moved up a step again)

    @property
    def shape(self):
        return tuple(self.times.shape)

    batch_size = property(lambda self: int(self.times.shape[0]), doc="B, the number of samples")
    n_neurons = property(lambda self: int(self.times.shape[1]), doc="N, the number of neurons")
    max_spikes = property(lambda self: int(self.times.shape[2]), doc="S, the spike slots per neuron")

    def n_spikes(self) -> int:
        return int(to_numpy(self.counts).sum())

    def n_overflow(self) -> int:
        return 0 if self.overflow is None else int(to_numpy(self.overflow).sum())

    def first_times(self):
        """Time of the first spike of each neuron, ``+inf`` if silent: ``[B, N]``."""
        return self.times[:, :, 0]

    def to_numpy(self) -> "SpikeTrains":
        return SpikeTrains(to_numpy(self.times), to_numpy(self.counts),
                           None if self.overflow is None else to_numpy(self.overflow), self.map_shape, self.grid)

    def validate(self, name: str = "spikes") -> "SpikeTrains":
        """Raise ValueError (TypeError for a wrong dtype) naming ``name`` when the container breaks
        the invariant of the module docstring. A few reductions (device syncs on a GPU)."""
        xp = xp_of(self.times)
        t, c = self.times, self.counts
        if getattr(t, "ndim", 0) != 3:
            raise ValueError(f"{name}.times must be [batch, neurons, slots]; got shape {tuple(getattr(t, 'shape', ()))}. "
                             "Add a slot axis for single spikes: times[..., None].")
        if t.dtype.kind != "f":
            raise TypeError(f"{name}.times must be a float array (+inf marks 'no spike'); got dtype {t.dtype}")
        if c is None or tuple(c.shape) != tuple(t.shape[:2]):
            raise ValueError(f"{name}.counts must have shape {tuple(t.shape[:2])} (batch, neurons); "
                             f"got {None if c is None else tuple(c.shape)}")
        if c.dtype.kind not in "iu":
            raise TypeError(f"{name}.counts must be integers; got dtype {c.dtype}")
        if bool(xp.isnan(t).any()):
            raise ValueError(f"{name}.times contains NaN; use +inf for 'no spike'.")
        if bool((t < 0).any()):
            raise ValueError(f"{name}.times contains negative times (or -inf); spike times are >= 0 (the trial "
                             "starts at 0) or +inf for 'no spike'. Shift the times first.")
        if t.shape[2] > 1 and bool((t[:, :, 1:] < t[:, :, :-1]).any()):
            raise ValueError(f"{name}.times must be sorted in time along the last axis; "
                             "sort them first (xp.sort(times, axis=2)).")
        s = t.shape[2]
        if bool((c < 0).any()) or bool((c > s).any()):
            raise ValueError(f"{name}.counts must lie in [0, {s}] (slots per neuron).")
        finite = xp.isfinite(t).sum(axis=2)
        if bool((finite != c).any()):
            raise ValueError(f"{name}.counts disagrees with the number of finite times per neuron (a layer would "
                             "drop or invent spikes); rebuild counts as isfinite(times).sum(axis=2).")
        o = self.overflow
        if o is not None:
            if tuple(o.shape) != tuple(t.shape[:2]):
                raise ValueError(f"{name}.overflow must have shape {tuple(t.shape[:2])} or be None; "
                                 f"got {tuple(o.shape)}")
            if bool((o < 0).any()):
                raise ValueError(f"{name}.overflow counts spikes that did not fit; it must be >= 0.")
        if self.map_shape is not None:
            ms = tuple(int(v) for v in self.map_shape)
            if len(ms) != 3 or int(np.prod(ms)) != t.shape[1]:
                raise ValueError(f"{name}.map_shape {self.map_shape} must be (height, width, channels) with "
                                 f"height * width * channels = {t.shape[1]} neurons")
        return self

    def to_raster(self, dt: float, n_steps: int):
        """0/1 raster ``[B, T, N]`` with spike at step ``floor(t / dt)``; spikes at or beyond
        ``n_steps * dt`` are outside the raster (their number is returned as the second value)."""
        from . import checks
        dt = checks.positive("dt", dt, "It is the raster's time step.")
        n_steps = checks.integer("n_steps", n_steps, 1)
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
    from . import checks
    B = len(trains)
    N = max(len(tr) for tr in trains) if B else 0
    if n_slots is not None:
        n_slots = checks.integer("n_slots", n_slots, 1)
    S = n_slots or max([len(x) for tr in trains for x in tr] + [1])
    times = np.full((B, N, S), np.inf, dtype=dtype)
    counts = np.zeros((B, N), dtype=np.int32)
    overflow = np.zeros((B, N), dtype=np.int32)
    for b, tr in enumerate(trains):
        for n, ts in enumerate(tr):
            ts = sorted(checks.nonnegative(f"trains[{b}][{n}] spike time", v, "Spike times are finite and >= 0.")
                        for v in ts)
            k = min(len(ts), S)
            times[b, n, :k] = ts[:k]
            counts[b, n] = k
            overflow[b, n] = len(ts) - k
    return SpikeTrains(times, counts, overflow)


def from_raster(raster, dt: float, max_spikes: int | None = None, dtype=np.float64) -> SpikeTrains:
    """Spike times ``(step + 0) * dt`` of a 0/1 raster ``[B, T, N]``; extra spikes beyond
    ``max_spikes`` are counted in ``overflow``."""
    from . import checks
    dt = checks.positive("dt", dt, "It is the raster's time step.")
    r = checks.real_array("raster", to_numpy(raster), np)
    if r.ndim != 3:
        raise ValueError(f"raster must be [batch, time, neurons]; got shape {r.shape}")
    if not bool(np.isin(r, (0, 1)).all()):
        raise ValueError("raster must hold 0/1 spikes (a count or NaN has no spike time); threshold it first, "
                         "e.g. raster > 0")
    r = r > 0
    B, T, N = r.shape
    per = r.sum(axis=1)
    if max_spikes is not None:
        max_spikes = checks.integer("max_spikes", max_spikes, 1)
    S = int(max_spikes or max(int(per.max()) if per.size else 0, 1))
    times = np.full((B, N, S), np.inf, dtype=dtype)
    slot = np.cumsum(r, axis=1) - 1                    # slot index of each spike in its neuron
    b, t, n = np.nonzero(r & (slot < S))
    times[b, n, slot[b, t, n]] = t * dt
    counts = np.minimum(per, S).astype(np.int32)
    return SpikeTrains(times, counts, (per - counts).astype(np.int32))
