"""Event data, stored compactly and binned to rasters one batch at a time.

SHD (8156 samples x 500 steps x 700 channels) or N-MNIST (60000 x 300 x 1156) would need tens of
GB as dense float32 rasters, so the events stay in a CSR layout — ``offsets[n+1]`` into flat
``times`` (seconds) and ``channels`` arrays — and :class:`EventData` bins them on indexing:

    raster = data[idx]          # float32 [len(idx), n_steps, n_channels]

An event at time t lands in step ``floor(t / dt)``; steps >= ``n_steps`` lie outside the window
and are not in the raster (S3GD's "keep steps < T"). Their number is not hidden:
``data.n_dropped`` counts them for the whole set. ``mode="binary"`` (default, the spike input
the S3GD layers take) marks a step once however many events share it; ``mode="count"`` sums them.
Because ``data[idx]`` is all the :class:`~snnkit.nn.Trainer` asks of ``x``, an EventData can be
the ``x`` of a data set unchanged.
"""
from __future__ import annotations

import numpy as np

from .. import checks


class EventData:
    def __init__(self, offsets, times, channels, n_channels: int, n_steps: int, dt: float,
                 mode: str = "binary"):
        offsets = np.asarray(offsets, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        channels = np.asarray(channels, dtype=np.int32)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0 and never decrease (CSR row pointers)")
        if offsets[-1] != len(times) or len(times) != len(channels):
            raise ValueError(f"offsets end at {offsets[-1]} but there are {len(times)} times and "
                             f"{len(channels)} channels; they must agree")
        n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time bins.")
        dt = checks.positive("dt", dt, "It is the bin width in seconds.")
        n_channels = checks.integer("n_channels", n_channels, 1)
        if mode not in ("binary", "count"):
            raise ValueError(f"mode must be 'binary' or 'count', got {mode!r}")
        if channels.size and (channels.min() < 0 or channels.max() >= n_channels):
            raise ValueError(f"channels must lie in [0, {n_channels}); found {channels.min()}..{channels.max()}")
        if times.size and (not np.isfinite(times).all() or times.min() < 0):
            raise ValueError("event times must be finite and >= 0 seconds")
        if n_channels <= np.iinfo(np.int16).max:
            channels = channels.astype(np.int16)               # N-MNIST train: 240M events; halve them
        self.offsets, self.times, self.channels = offsets, times, channels
        self.n_channels, self.n_steps, self.dt, self.mode = int(n_channels), int(n_steps), float(dt), mode
        # steps are computed per batch (a full array would double the memory); count the late ones now
        self.n_dropped = sum(int((self._steps(times[i:i + (1 << 24)]) >= n_steps).sum())
                             for i in range(0, len(times), 1 << 24))

    def _steps(self, t):
        return np.floor(t / self.dt).astype(np.int64)

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def shape(self):
        return (len(self), self.n_steps, self.n_channels)

    @property
    def ndim(self):
        return 3

    @property
    def n_events(self):
        return int(self.offsets[-1])

    def _gather(self, idx):
        """Flat event indices of samples ``idx`` and the batch row of each."""
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        lens = ends - starts
        row = np.repeat(np.arange(len(idx)), lens)
        first = np.repeat(starts - (np.cumsum(lens) - lens), lens)
        return np.arange(int(lens.sum())) + first, row

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            return self[np.array([idx])][0]
        idx = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError("index EventData with an integer, a slice or a 1-D index array")
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} samples")
        idx = idx % max(len(self), 1)
        ev, row = self._gather(idx)
        step = self._steps(self.times[ev])
        keep = step < self.n_steps
        out = np.zeros((len(idx), self.n_steps, self.n_channels), dtype=np.float32)
        if self.mode == "binary":
            out[row[keep], step[keep], self.channels[ev[keep]]] = 1.0
        else:
            np.add.at(out, (row[keep], step[keep], self.channels[ev[keep]]), 1.0)
        return out

    def subset(self, idx) -> "EventData":
        """The samples ``idx`` as a new EventData (events copied, same binning)."""
        idx = np.asarray(idx, dtype=np.int64)
        ev, _ = self._gather(idx)
        lens = self.offsets[idx + 1] - self.offsets[idx]
        return EventData(np.concatenate([[0], np.cumsum(lens)]), self.times[ev], self.channels[ev],
                         self.n_channels, self.n_steps, self.dt, self.mode)

    def rebin(self, n_steps: int | None = None, dt: float | None = None, mode: str | None = None) -> "EventData":
        """Same events, another window or step."""
        return EventData(self.offsets, self.times, self.channels, self.n_channels,
                         self.n_steps if n_steps is None else n_steps, self.dt if dt is None else dt,
                         mode or self.mode)

    def events(self, i: int):
        """(times s, channels) of sample ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.times[a:b], self.channels[a:b]

    def __repr__(self):
        return (f"EventData(n={len(self)}, n_steps={self.n_steps}, dt={self.dt}, channels={self.n_channels}, "
                f"events={self.n_events}, outside window={self.n_dropped}, mode={self.mode!r})")
