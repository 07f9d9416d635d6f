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
the ``x`` of a data set unchanged. On a GPU that path bins every batch on the host and uploads the
raster (SHD: 128 x 500 x 700 float32 = 179 MB a step, far more than the step itself);
:class:`EventBinner` is the encoder that uploads the events once and bins each batch on the device
(one kernel, ``kernels/event_bin.cu``), bit for bit the raster ``data[idx]`` gives.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import get_xp


def gather(offsets, idx):
    """``(ev, row)``: the flat indices of the events of samples ``idx`` (non-negative) of the CSR
    ``offsets``, in sample order, and the batch row (position in ``idx``) of each."""
    starts, ends = offsets[idx], offsets[idx + 1]
    lens = ends - starts
    row = np.repeat(np.arange(len(idx)), lens)
    first = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return np.arange(int(lens.sum())) + first, row


def raster(row, cell, n_rows, n_steps, n_channels, mode, dtype=np.float32):
    """The raster ``[n_rows, n_steps, n_channels]`` with the events ``(row, cell)`` written in
    (``cell = step * n_channels + channel``, all in the window): ``mode="binary"`` stores 1 once per
    cell however many events share it, ``"count"`` adds 1 per event."""
    out = np.zeros((n_rows, n_steps * n_channels), dtype=dtype)
    if mode == "binary":
        out[row, cell] = 1
    else:
        np.add.at(out, (row, cell), 1)
    return out.reshape(n_rows, n_steps, n_channels)


def bin_batch(offsets, cells, rows, n_steps, n_channels, mode, dtype=np.float32):
    """NumPy twin of kernels/event_bin.cu::event_bin: the raster of samples ``rows`` (non-negative,
    in range) of a CSR of cells (``offsets[n+1]``, ``cells`` as :meth:`EventData.cells` gives them,
    the out-of-window ones already removed), written by :func:`raster` exactly as ``EventData[idx]``."""
    ev, row = gather(offsets, rows)
    return raster(row, cells[ev], len(rows), n_steps, n_channels, mode, dtype)


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
        return gather(self.offsets, idx)

    def cells(self, ev):
        """``(cell, keep)`` of the events ``ev`` (flat indices): the raster cell
        ``floor(t / dt) * n_channels + channel`` of each and whether its step lies in the window
        (``floor(t / dt) < n_steps``). The one place the binning is written; ``data[idx]`` and
        :class:`EventBinner` (host and device) both take their cells from here."""
        step = self._steps(self.times[ev])
        return step * self.n_channels + self.channels[ev], step < self.n_steps

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
        cell, keep = self.cells(ev)
        return raster(row[keep], cell[keep], len(idx), self.n_steps, self.n_channels, self.mode)

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


_BLOCK = 256                 # threads per block of event_bin; grid (batch rows, blocks per row)


class DeviceEvents:
    """An :class:`EventData`'s in-window events on the array backend, as :meth:`EventBinner.prepare`
    uploads them: ``offsets`` int64 ``[n + 1]`` and ``cells`` int32 (``step * n_channels + channel``
    of every event in the window, in sample order). ``events[rows]`` selects a batch for
    :meth:`EventBinner.on_device` (rows: a slice, or a 1-D integer index array, host or device; a
    host index is checked, a device one is not -- checking it would cost a sync per batch -- so it
    must be in range, as the Trainer's own batch order is)."""

    def __init__(self, offsets, cells, n_steps, n_channels, mode, max_events):
        self.offsets, self.cells = offsets, cells
        self.n_steps, self.n_channels, self.mode = n_steps, n_channels, mode
        self.max_events = max_events          # events of the fullest sample: the kernel's grid height

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def nbytes(self):
        return int(self.offsets.nbytes + self.cells.nbytes)

    def __getitem__(self, rows):
        xp, n = get_xp(), len(self)
        if isinstance(rows, slice):
            return EventRows(self, xp.arange(*rows.indices(n), dtype=xp.int64))
        if hasattr(rows, "__cuda_array_interface__"):
            if rows.ndim != 1 or rows.dtype.kind not in "iu":
                raise TypeError(f"rows must be a 1-D integer index array, got {rows.dtype} with shape {rows.shape}")
            return EventRows(self, xp.ascontiguousarray(rows.astype(xp.int64, copy=False)))   # a raw pointer: dense
        host = np.asarray(rows)
        if host.ndim != 1 or (host.size and host.dtype.kind not in "iu"):
            raise TypeError(f"rows must be a slice or a 1-D integer index array, got {host.dtype} with shape "
                            f"{host.shape}")
        host = host.astype(np.int64)
        if host.size and (host.min() < -n or host.max() >= n):
            raise IndexError(f"rows out of range for {n} samples (got {host.min()}..{host.max()})")
        return EventRows(self, xp.asarray(host % max(n, 1)))

    def __repr__(self):
        return (f"DeviceEvents(n={len(self)}, events={len(self.cells)}, n_steps={self.n_steps}, "
                f"channels={self.n_channels}, mode={self.mode!r}, {self.nbytes / 2**20:.1f} MiB)")


class EventRows:
    """Rows of a :class:`DeviceEvents` (``events[rows]``): a batch for :meth:`EventBinner.on_device`."""

    def __init__(self, events, rows):
        self.events, self.rows = events, rows

    def __len__(self):
        return len(self.rows)


class EventBinner:
    r"""The encoder of event data (an :class:`EventData`, e.g. ``load("shd").x``) for the Trainer,
    with the device fast path: the events go to the GPU once and each batch is binned there.

    Binning (the one formula is :meth:`EventData.cells`). Event :math:`e` of a sample, at time
    :math:`t_e` seconds in channel :math:`c_e`, falls in step :math:`k_e = \lfloor t_e / dt \rfloor`,
    i.e. in the raster cell :math:`q_e = k_e C + c_e` of the sample's flat ``[T * C]`` raster
    (:math:`T` = ``n_steps``, :math:`C` = ``n_channels``). Batch row :math:`b` of sample
    :math:`s_b` is

    .. math:: X_{b,k,c} = [\exists e \in s_b: k_e = k, c_e = c] \ \text{(binary)}, \quad
              X_{b,k,c} = \#\{e \in s_b: k_e = k, c_e = c\} \ \text{(count)},

    the ``mode`` of the EventData. Events with :math:`k_e \ge T` lie after the window
    :math:`T\,dt` and are in no raster (``EventData.n_dropped`` counts them), so ``prepare`` leaves
    them out of the upload: they would cost memory and a test per batch for nothing.

    * ``encode(x_batch, rng)`` (``__call__``, the host path): ``x_batch = EventData[idx]``, already
      the raster ``[B, T, C]``; checked (``T = n_steps``) and uploaded as ``dtype``.
    * ``prepare(events)``: computes every event's cell once on the host and uploads the CSR:
      ``offsets`` int64 (8 bytes per sample) and ``cells`` int32 (**4 bytes per event** in the
      window; SHD's 500 x 700 cells fit int32 with room to spare). Returns a :class:`DeviceEvents`.
    * ``on_device(events[rows])``: a zeroed ``dtype`` raster ``[B, T, C]`` and one launch of
      ``kernels/event_bin.cu`` (a block row per batch row, threads over the sample's events;
      binary: store 1, count: ``atomicAdd`` 1 -- sums of ones are exact and order-free, so the
      result is bit for bit ``EventData[idx]``); no host work, no sync. On NumPy its twin,
      :func:`bin_batch`.

    ``n_steps`` is the window the network expects; an EventData or raster with another one is an
    error (``events.rebin(n_steps=...)`` fixes the data).
    """
    uses_rng = False                 # deterministic: the Trainer builds no generator per batch
    device_input = EventData         # what the Trainer's fast path uploads (the default is a NumPy array)

    def __init__(self, n_steps, dtype=np.float32):
        self.n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time bins T of the data.")
        self.dtype = checks.float_dtype("dtype", dtype)

    def _check_steps(self, what, got):
        if got != self.n_steps:
            raise ValueError(f"{what} has {got} time steps but EventBinner(n_steps={self.n_steps}) expects "
                             f"{self.n_steps}; bin the data to match (events.rebin(n_steps={self.n_steps})) or "
                             f"make the encoder EventBinner(n_steps={got}).")

    def __call__(self, x, rng=None):
        if isinstance(x, EventData):
            raise TypeError("encode(x) takes a batch of an EventData, x = events[idx] (its raster [B, T, C]), "
                            "not the whole EventData; index it first (the Trainer does).")
        shape = tuple(getattr(x, "shape", np.shape(x)))
        if len(shape) != 3:
            raise ValueError(f"x must be a binned batch [B, n_steps, n_channels] (EventData[idx]); got shape {shape}")
        self._check_steps("x", shape[1])
        return get_xp().asarray(x, dtype=self.dtype)

    def prepare(self, events) -> DeviceEvents:
        if not isinstance(events, EventData):
            raise TypeError(f"events must be an EventData (e.g. load('shd').x), got {type(events).__name__}; "
                            "EventBinner bins events. Features go through LatencyEncoder / LogLatencyEncoder, "
                            "and rasters binned already need no encoder (encode=None).")
        self._check_steps("events", events.n_steps)
        T, C = events.n_steps, events.n_channels
        if T * C > np.iinfo(np.int32).max:
            raise ValueError(f"a raster of n_steps x n_channels = {T} x {C} cells does not fit int32 cell indices "
                             "(nor one sample's raster in memory); use fewer steps (events.rebin(n_steps=...)).")
        E, chunk = events.n_events, 1 << 24
        cells = np.empty(E - events.n_dropped, dtype=np.int32)
        dropped, filled = [], 0
        for a in range(0, E, chunk):                        # chunks: no int64 copy of the whole set
            cell, keep = events.cells(np.arange(a, min(a + chunk, E)))
            cells[filled:filled + int(keep.sum())] = cell[keep]
            filled += int(keep.sum())
            dropped.append(a + np.flatnonzero(~keep))
        dropped = np.concatenate(dropped) if dropped else np.zeros(0, np.int64)
        offsets = events.offsets - np.searchsorted(dropped, events.offsets)   # minus the dropped before
        xp = get_xp()
        return DeviceEvents(xp.asarray(offsets), xp.asarray(cells), T, C, events.mode,
                            int(np.diff(offsets).max(initial=0)))

    def on_device(self, batch, rng=None):
        if isinstance(batch, DeviceEvents):
            batch = batch[:]
        if not isinstance(batch, EventRows):
            raise TypeError(f"batch must be rows of the set prepare() returned, enc.on_device(enc.prepare(events)"
                            f"[rows]); got {type(batch).__name__}" + (" (a binned raster goes through encode(x), "
                            "the host path)" if hasattr(batch, "shape") else ""))
        ev = batch.events
        self._check_steps("the prepared events", ev.n_steps)
        B, T, C = len(batch), ev.n_steps, ev.n_channels
        xp = get_xp()
        if xp is np:
            return bin_batch(ev.offsets, ev.cells, batch.rows, T, C, ev.mode, self.dtype)
        from ..kernels import function
        out = xp.zeros((B, T, C), dtype=self.dtype)
        if B and ev.max_events:
            grid = (B, min(-(-ev.max_events // _BLOCK), 65535))       # more events loop in the kernel
            function("event_bin.cu", "event_bin", self.dtype)(
                grid, (_BLOCK,), (ev.offsets, ev.cells, batch.rows, np.int64(len(ev)), np.int64(T * C),
                                  np.int32(ev.mode == "count"), out))
        return out

    def __repr__(self):
        return f"EventBinner(n_steps={self.n_steps})"
