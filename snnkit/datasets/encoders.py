"""Turning analog features x in [0, 1] into spikes.

* ``latency``        (BATS): one spike per feature at t = t_max (1 - x); x == 0 -> no spike.
                     Returns a :class:`~snnkit.spikes.SpikeTrains` with one slot.
* ``log_latency``    (S3GD): spike step = int(tau ln(x / (x - thr))) for x > thr, else none;
                     a raster [B, T, N] with at most one spike per feature, steps >= T dropped
                     (and counted: ``return_dropped=True``).
* ``poisson``        : independent Bernoulli(x * max_prob) per step, raster [B, T, N].
* ``direct``         (STBP): the analog input repeated over T steps, [B, T, ...].

Device-side encoding (the training loop's fast path): ``LatencyEncoder`` checks a whole data set
once on the host (``prepare``: the value checks cost no device sync there), uploads it once, and
then encodes each batch of the uploaded copy on the GPU in one kernel launch (``on_device``), with
no host work and no sync per batch. ``latency`` itself also accepts a CuPy array (checked with one
device sync, encoded on the device). The device result is bit-identical to the NumPy one: the time
is computed in float64, ``t_max * (1 - x)``, and rounded to ``dtype`` once, as on the host.
``LogLatencyEncoder`` does the same for S3GD's ``log_latency`` (the raster written on the GPU).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import get_xp, to_numpy, xp_of
from ..spikes import SpikeTrains


def _features(x, name="x"):
    """``x`` [B, ...] as [B, N] (images flattened; B = 0 gives an empty batch), checked to lie in [0, 1]."""
    on_gpu = hasattr(x, "__cuda_array_interface__")
    xp = get_xp() if on_gpu else np
    x = checks.real_array(name, x, xp)
    if x.ndim < 1:
        raise ValueError(f"{name} must be a batch [B, features] (or [B, H, W, ...] images); got a scalar")
    if not on_gpu or x.dtype.kind != "f":
        x = x.astype(np.float64)           # the encodings are computed in float64, then cast
    if bool(xp.isnan(x).any()):
        raise ValueError(f"{name} contains NaN; encoders expect features in [0, 1].")
    if x.size and (bool((x < 0).any()) or bool((x > 1).any())):
        raise ValueError(f"{name} must lie in [0, 1] (got min {float(x.min())}, max {float(x.max())}); "
                         "scale it first, e.g. x / x.max().")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def _map_shape(x):
    """(H, W, C) of an image batch [B, H, W] or [B, H, W, C] (None for flat features)."""
    shape = tuple(getattr(x, "shape", np.shape(x)))
    if len(shape) == 3:
        return shape[1:] + (1,)
    if len(shape) == 4:
        return shape[1:]
    return None


_LATENCY_KERNEL = None


def _latency_device(x, t_max, dtype, map_shape=None) -> SpikeTrains:
    """``latency`` of a CuPy array [B, ...] already checked: one elementwise launch writes the times
    (float64 arithmetic, one rounding to ``dtype``, +inf for x == 0) and the counts."""
    global _LATENCY_KERNEL
    import cupy as cp
    if _LATENCY_KERNEL is None:
        _LATENCY_KERNEL = cp.ElementwiseKernel(
            "X x, float64 t_max, float64 never", "T t, int32 c",
            "const double v = (double)x; if (v > 0) { t = (T)(t_max * (1.0 - v)); c = 1; } "
            "else { t = (T)never; c = 0; }",
            "snnkit_latency_encode")
    x = x.reshape(len(x), -1)
    t = cp.empty(x.shape + (1,), dtype=dtype)
    c = cp.empty(x.shape, dtype=cp.int32)
    _LATENCY_KERNEL(x, float(t_max), float("inf"), t[:, :, 0], c)
    return SpikeTrains(t, c, cp.zeros_like(c), map_shape)


def latency(x, t_max=0.1, dtype=np.float32, to_device=True) -> SpikeTrains:
    """One spike per feature at ``t_max * (1 - x)``; zero features stay silent.
    ``x`` is [B, N] (images are flattened); a CuPy ``x`` is encoded on the GPU."""
    t_max = checks.positive("t_max", t_max, "It is the latest spike time (x = 0+ fires at t_max).")
    dtype = checks.float_dtype("dtype", dtype)
    map_shape = _map_shape(x)
    if hasattr(x, "__cuda_array_interface__"):
        return _latency_device(_features(x), t_max, dtype, map_shape)
    x = to_numpy(_features(x))
    t = np.where(x > 0, t_max * (1.0 - x), np.inf).astype(dtype)[:, :, None]
    counts = np.isfinite(t[:, :, 0]).astype(np.int32)
    if to_device:
        xp = get_xp()
        return SpikeTrains(xp.asarray(t), xp.asarray(counts), xp.zeros_like(xp.asarray(counts)), map_shape)
    return SpikeTrains(t, counts, np.zeros_like(counts), map_shape)


def log_latency(x, n_steps=100, tau=20.0, threshold=0.2, dtype=np.float32, return_dropped=False):
    """S3GD's encoding: a spike at step ``int(tau * ln(x / (x - threshold)))`` for x > threshold."""
    n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time steps T.")
    tau = checks.positive("tau", tau)
    threshold = checks.in_range("threshold", threshold, 0, 1, hi_open=True,
                                fix="Features at or below it stay silent; 1 or more would silence everything.")
    dtype = checks.float_dtype("dtype", dtype)
    x = to_numpy(_features(x))
    out = np.zeros((x.shape[0], n_steps, x.shape[1]), dtype=dtype)
    step = _log_latency_steps(x, n_steps, tau, threshold)
    b, n = np.nonzero(step >= 0)
    out[b, step[b, n], n] = 1
    out = get_xp().asarray(out)
    return (out, int((x > threshold).sum() - len(b))) if return_dropped else out


def poisson(x, n_steps=100, max_prob=1.0, rng=None, dtype=np.float32):
    """Bernoulli spikes with probability ``x * max_prob`` at every step (rate coding)."""
    n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time steps T.")
    max_prob = checks.in_range("max_prob", max_prob, 0, 1, fix="It is the spike probability per step at x = 1.")
    dtype = checks.float_dtype("dtype", dtype)
    x = to_numpy(_features(x))
    r = rng if rng is not None else np.random.default_rng(0)
    out = (r.random((x.shape[0], n_steps, x.shape[1])) < (x * max_prob)[:, None, :]).astype(dtype)
    return get_xp().asarray(out)


def repeat_over_time(x, n_steps):
    """``[T, *x.shape]``: the frame ``x`` at every one of ``n_steps`` steps, time-major, on x's own
    device and unchecked: the core of :func:`direct`, and what STBP's ``DirectInput`` / ``RepeatInput``
    (and, for gradients, ``Readout``) run on every batch."""
    xp = xp_of(x)
    return xp.ascontiguousarray(xp.broadcast_to(x, (n_steps,) + x.shape))


def direct(x, n_steps=2, time_major=False, dtype=np.float32):
    """The analog input fed at every step: [B, T, ...] (or [T, B, ...] with ``time_major``)."""
    n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time steps T.")
    dtype = checks.float_dtype("dtype", dtype)
    xp = get_xp()
    x = checks.real_array("x", x, xp)
    if x.ndim < 1:
        raise ValueError("x must be a batch [B, ...]; got a scalar")
    x = x.astype(dtype, copy=False)
    if not checks.all_finite(x):
        raise ValueError("x contains NaN or Inf; check the data")
    if time_major:
        return repeat_over_time(x, n_steps)
    return xp.ascontiguousarray(xp.broadcast_to(x[:, None], (x.shape[0], n_steps) + x.shape[1:]))


class LatencyEncoder:
    """``latency`` as a Trainer encoder: ``encode(x_batch, rng) -> SpikeTrains`` (``rng`` unused),
    plus the device fast path the Trainer takes on the GPU:

    * ``prepare(x)``: checks the whole data set on the host (NaN, range) and uploads it once, as
      float32; returns the device copy.
    * ``on_device(x_dev_batch)``: encodes rows of that copy on the GPU, no check, no sync.
    """
    uses_rng = False                 # deterministic: the Trainer need not build a generator per batch

    def __init__(self, t_max=0.1, dtype=np.float32):
        if not t_max > 0:
            raise ValueError(f"t_max must be > 0, got {t_max}")
        self.t_max, self.dtype = float(t_max), dtype

    def __call__(self, x, rng=None) -> SpikeTrains:
        return latency(x, t_max=self.t_max, dtype=self.dtype)

    def prepare(self, x):
        x = np.asarray(x).reshape(len(x), -1)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        # once, on the host, in the data's own precision (no float64 copy of the whole set)
        if np.isnan(x).any():
            raise ValueError("the training features contain NaN; encoders expect features in [0, 1].")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"the training features must lie in [0, 1] (got min {lo}, max {hi}); "
                             "scale them first, e.g. x / x.max().")
        return get_xp().asarray(x)

    def on_device(self, x_dev, rng=None) -> SpikeTrains:
        if get_xp() is np:
            t = np.where(x_dev > 0, self.t_max * (1.0 - x_dev.astype(np.float64)), np.inf).astype(self.dtype)
            c = (x_dev > 0).astype(np.int32)
            return SpikeTrains(t[:, :, None], c, np.zeros_like(c))
        return _latency_device(x_dev, self.t_max, self.dtype)

    def __repr__(self):
        return f"LatencyEncoder(t_max={self.t_max:g})"


_LOG_LATENCY_KERNEL = None


def _log_latency_steps(x, n_steps, tau, threshold):
    """Per feature the step of its spike, -1 for none: NumPy [B, N] int64 (the host formula)."""
    on = x > threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(on, tau * np.log(np.where(on, x, 1.0) / np.where(on, x - threshold, 1.0)), 0.0)
    step = step.astype(np.int64)
    return np.where(on & (step < n_steps), step, -1)


class LogLatencyEncoder:
    """``log_latency`` as a Trainer encoder with the device fast path (as :class:`LatencyEncoder`):

    * ``encode(x_batch, rng)``: ``log_latency(x_batch, n_steps, tau, threshold)`` (host, per batch).
    * ``prepare(x)``: checks the whole set once on the host (NaN, range), uploads it once.
    * ``on_device(x_dev_batch)``: the raster [B, T, N] written on the GPU by one elementwise launch
      over the B x N features (step = int(tau ln(x / (x - threshold))) in float64, as on the host;
      one store per spiking feature into a zeroed raster); no host work, no sync.

    Without it every S3GD step builds the [B, T, N] float32 raster on the host and uploads it
    (256 x 100 x 784 x 4 B = 80 MB per Fashion-MNIST batch), which costs more than the step itself.
    """
    uses_rng = False

    def __init__(self, n_steps=100, tau=20.0, threshold=0.2, dtype=np.float32):
        self.n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time steps T.")
        self.tau = checks.positive("tau", tau)
        self.threshold = checks.in_range("threshold", threshold, 0, 1, hi_open=True,
                                         fix="Features at or below it stay silent; 1 or more would silence everything.")
        self.dtype = checks.float_dtype("dtype", dtype)

    def __call__(self, x, rng=None):
        return log_latency(x, n_steps=self.n_steps, tau=self.tau, threshold=self.threshold, dtype=self.dtype)

    def prepare(self, x):
        return LatencyEncoder.prepare(self, x)          # same once-per-set check and upload

    def on_device(self, x_dev, rng=None):
        x_dev = x_dev.reshape(len(x_dev), -1)
        B, N, T = x_dev.shape[0], x_dev.shape[1], self.n_steps
        if get_xp() is np:                              # the CPU twin: the host formula
            step = _log_latency_steps(x_dev.astype(np.float64), T, self.tau, self.threshold)
            out = np.zeros((B, T, N), dtype=self.dtype)
            b, n = np.nonzero(step >= 0)
            out[b, step[b, n], n] = 1
            return out
        global _LOG_LATENCY_KERNEL
        import cupy as cp
        if _LOG_LATENCY_KERNEL is None:
            _LOG_LATENCY_KERNEL = cp.ElementwiseKernel(
                "X x, float64 tau, float64 thr, int64 T, int64 N", "raw O out",
                "const double v = (double)x; if (v > thr) { "
                "  const long long s = (long long)(tau * log(v / (v - thr))); "
                "  if (s < T) { const long long b = i / N, n = i % N; out[(b * T + s) * N + n] = (O)1; } }",
                "snnkit_log_latency_encode")
        out = cp.zeros((B, T, N), dtype=self.dtype)
        _LOG_LATENCY_KERNEL(x_dev, float(self.tau), float(self.threshold), int(T), int(N), out)
        return out

    def __repr__(self):
        return f"LogLatencyEncoder(n_steps={self.n_steps}, tau={self.tau:g}, threshold={self.threshold:g})"
