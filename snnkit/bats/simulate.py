"""Forward pass of a dense BATS layer: the exact event-driven simulation (see ``neuron.py``).

    simulate(weight [N_out, N_in], in_times [B, N_in, S_in], tau_s, theta, delta_theta=None,
             max_spikes=1, t_max=inf, dt=None) -> Simulation

``Simulation`` unpacks as ``times, counts = simulate(...)`` and also carries what the backward and
the discretization study need:

    times     [B, N_out, S]  output spike times, sorted, +inf padded (grid times when dt is set)
    counts    [B, N_out]     int32, stored spikes per neuron (<= max_spikes)
    overflow  [B, N_out]     int32, spikes that fired but did not fit into the S slots (reported, not lost)
    t_cont    [B, N_out, S]  continuous spike times (the same array as ``times`` when dt is None)
    x         [B, N_out, S]  sqrt(b^2 - 4ac) at each spike, for the backward's f1, f2
    in_used   [B, N_in, S_in] the input times the simulation actually used (grid times when dt is set)

Algorithm, per sample: sort all input spikes in time, then each (sample, neuron) runs one sequential
loop over those events, accumulating ``a`` and ``b`` and emitting the spikes that fall before the next
event. The NumPy twin runs that loop vectorized over all (sample, neuron) pairs; the CUDA kernel
(``kernels/bats_forward.cu``) runs one thread per pair. Both read the weights transposed
([N_in, N_out], so the threads of a warp, neighbouring neurons, read neighbouring addresses) and
gather them per event, instead of materializing a [B, N_out, events] weight tensor.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .. import checks
from ..backend import is_cupy_array, xp_of
from ..spikes import SpikeTrains
from .neuron import KERNEL_DEFINES, check_exp_range, check_neuron, check_times, grid_up

__all__ = ["simulate", "Simulation", "sort_events"]


@dataclass
class Simulation:
    times: object
    counts: object
    overflow: object
    t_cont: object
    x: object
    in_used: object

    def __iter__(self):                      # times, counts = simulate(...)
        return iter((self.times, self.counts))

    @property
    def spikes(self) -> SpikeTrains:
        return SpikeTrains(self.times, self.counts, self.overflow)


def sort_events(in_times, tau_s, dt=None, used=None):
    """All input spikes of each sample in time order.

    Returns ``ev_t, ev_i, ev_a, ev_b, used``: [B, K] arrays of times (+inf padded), input index,
    ``exp(t/tau_s)`` and ``exp(t/tau)`` (0 for padding), and the (rounded) input times used. NumPy
    keeps K = the most spikes of any sample (its loop runs over K); CuPy keeps all N_in * S_in
    events (the kernel stops at the first +inf, and no device-to-host sync is needed for K)."""
    xp = xp_of(in_times)
    B, n_in, s_in = in_times.shape
    if used is None:                         # the rounded times, unless the caller already has them
        used = grid_up(in_times, dt) if dt is not None else in_times
    flat = used.reshape(B, n_in * s_in)
    if xp is not np:
        return _sort_events_cuda(flat, s_in, tau_s) + (used,)
    order = np.argsort(flat, axis=1, kind="stable")
    K = max(int(np.isfinite(flat).sum(axis=1).max()) if B else 0, 1)
    order = order[:, :K]
    ev_t = np.ascontiguousarray(np.take_along_axis(flat, order, axis=1))
    ev_i = (order // s_in).astype(np.int32)
    fin = np.isfinite(ev_t)
    safe = np.where(fin, ev_t, 0)
    ev_a = np.where(fin, np.exp(safe / tau_s), 0).astype(ev_t.dtype)
    ev_b = np.where(fin, np.exp(safe / (2 * tau_s)), 0).astype(ev_t.dtype)
    return ev_t, ev_i, ev_a, ev_b, used


def _sort_events_cuda(flat, s_in, tau_s):
    import cupy as cp
    from ..kernels import function, launch_1d
    B, NS = flat.shape
    flat = cp.ascontiguousarray(flat)
    if flat.dtype == np.float32:            # one radix sort over (sample, time-bits) keys
        keys = cp.empty(B * NS, cp.uint64)
        launch_1d(function("bats_forward.cu", "bats_sort_keys_f32", defines=KERNEL_DEFINES), B * NS,
                  (flat, np.int64(B * NS), np.int32(NS), keys))
        order, is_global = cp.argsort(keys), 1
    else:
        order, is_global = cp.argsort(flat, axis=1), 0
    f = flat.dtype.type
    order = cp.ascontiguousarray(order.astype(cp.int64, copy=False))
    ev_t = cp.empty((B, NS), flat.dtype)
    ev_i = cp.empty((B, NS), cp.int32)
    ev_a = cp.empty((B, NS), flat.dtype)
    ev_b = cp.empty((B, NS), flat.dtype)
    launch_1d(function("bats_forward.cu", "bats_gather_events", flat.dtype, KERNEL_DEFINES), B * NS,
              (flat, order, np.int64(B), np.int32(NS), np.int32(s_in), np.int32(is_global), f(tau_s),
               ev_t, ev_i, ev_a, ev_b))
    return ev_t, ev_i, ev_a, ev_b


# A neuron that fires this many times within one sample is not a model anyone trains: its weights
# are orders of magnitude too large for its threshold. The event loop spends one pass per spike
# (the k-th spike's time depends on every earlier reset, so there is no closed form for the count),
# so weights of 1e7 would otherwise keep it busy for hours; it stops with an error instead.
MAX_FIRINGS = 10_000


def simulate(weight, in_times, tau_s, theta, delta_theta=None, max_spikes=1, t_max=float("inf"),
             dt=None, check=True, *, name="in_times", on_grid=False) -> Simulation:
    """Exact spike times of a dense layer of BATS neurons (see the module docstring).

    ``check=False`` skips the value checks of ``in_times`` (NaN, negative times, sorting) and of
    the weights (NaN/Inf), which cost a device sync on the GPU; layers use it for trains that a BATS
    layer produced itself (the Trainer checks the weights every step). On NumPy the weights are
    always checked. A neuron firing more than ``MAX_FIRINGS`` times in one sample is an error (the
    weights are far too large for theta), as is an output that could not fit into memory. ``name``
    is what the error messages call ``in_times`` (a layer says "input spikes").

    ``on_grid=True`` (with ``dt``): ``in_times`` are the grid times of a layer on the same grid and are
    used as they are. Only times from outside the grid (data, an encoder) move up to it: a hidden
    spike reported at ``k dt`` reaches the next layer at ``k dt``, as in the study's code, and not one
    step later (which ``grid_up`` does to a time already on the grid).

    ``t_max`` ends the window. Without a grid a spike counts when it fires at ``t <= t_max``; on a
    grid a neuron reports at its grid time, so a spike counts when that time is ``<= t_max`` (the
    study's rule: a crossing in the last, partial step of a window that is not a whole number of
    steps is not reported)."""
    tau_s, theta, delta_theta, S, t_max, dt = check_neuron(tau_s, theta, delta_theta, max_spikes, t_max, dt)
    if getattr(weight, "ndim", 0) != 2:
        raise ValueError(f"weight must be a 2-d array [n_out, n_in]; got shape {getattr(weight, 'shape', None)}")
    xp = xp_of(weight)
    dtype = weight.dtype
    if dtype.kind == "c":
        raise TypeError(f"weight is complex ({dtype}); BATS weights are real. Pass weight.real if that is meant.")
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"weight must be float32 or float64; got {dtype}. Cast it: weight.astype(np.float32)")
    if weight.shape[0] < 1 or weight.shape[1] < 1:
        raise ValueError(f"weight must have at least one output and one input; got shape {tuple(weight.shape)}")
    in_times = check_times(in_times, weight.shape[1], name, values=check)
    if xp_of(in_times) is not xp:
        raise ValueError("weight and in_times live on different devices; move both with snnkit.backend.to_device")
    if (check or xp is np) and not checks.all_finite(weight):
        raise ValueError("weight contains NaN or Inf; a neuron with such a weight never crosses threshold (it "
                         "would be silenced without a word). Re-initialize the layer or lower the learning rate.")
    B, N = in_times.shape[0], weight.shape[0]
    checks.allocation(B * N * S * dtype.itemsize * (3 if dt is None else 4),
                      f"the output of simulate (batch {B} x {N} neurons x max_spikes={S} slots, "
                      f"{np.dtype(dtype).name})",
                      "Lower max_spikes (slots per neuron; extra spikes are counted in overflow) or the batch.", xp)
    in_times = in_times.astype(dtype, copy=False)
    if dt is not None:
        used = in_times if on_grid else grid_up(in_times, dt)
        if check:           # rounding moves spikes later: check the range of the times actually used
            check_exp_range(used, tau_s, dtype, f"{name} (rounded up to the dt grid)", t_max)
            _warn_if_rounded_out(in_times, used, t_max, dt)
    else:
        used = None
        if check:
            check_exp_range(in_times, tau_s, dtype, name, t_max=t_max)
    ev_t, ev_i, ev_a, ev_b, used = sort_events(in_times, tau_s, dt, used)
    if is_cupy_array(weight):
        out = _simulate_cuda(weight, ev_t, ev_i, ev_a, ev_b, tau_s, theta, delta_theta, S, t_max, dt)
    else:
        out = _simulate_numpy(weight, ev_t, ev_i, ev_a, ev_b, tau_s, theta, delta_theta, S, t_max, dt)
    times, t_cont, x, counts, overflow = out
    return Simulation(times, counts, overflow, t_cont, x, used)


def _warn_if_rounded_out(in_times, used, t_max, dt):
    """A (legitimately odd) grid so coarse that rounding moved every input spike that lay within
    t_max past it: the layer cannot fire. Say so instead of returning a silent layer."""
    if not math.isfinite(t_max):
        return
    xp = xp_of(in_times)
    before = xp.isfinite(in_times) & (in_times <= t_max)
    if bool(before.any()) and not bool((before & (used <= t_max)).any()):
        warnings.warn(f"dt = {dt:g}: rounding up to the grid moved every input spike past t_max = {t_max:g}, so "
                      "no neuron can fire. Use a smaller dt (or a later t_max).", RuntimeWarning, stacklevel=3)


def _simulate_numpy(weight, ev_t, ev_i, ev_a, ev_b, tau_s, theta, delta_theta, S, t_max, dt):
    """NumPy twin of ``bats_forward``: the same event loop, vectorized over (sample, neuron)."""
    B, K = ev_t.shape
    N = weight.shape[0]
    dtype = weight.dtype
    tau = 2.0 * tau_s
    c, r = theta / tau, delta_theta / tau
    wT = np.ascontiguousarray(weight.T)                         # [N_in, N_out]
    times = np.full((B, N, S), np.inf, dtype)
    t_cont = np.full((B, N, S), np.inf, dtype) if dt is not None else times
    x_out = np.zeros((B, N, S), dtype)
    a = np.zeros((B, N), dtype)
    bb = np.zeros((B, N), dtype)
    last = np.full((B, N), -np.inf, dtype)                      # last continuous output spike
    last_d = np.full((B, N), -np.inf, dtype)                    # ... and its grid time
    cnt = np.zeros((B, N), np.int64)
    rows, cols = np.indices((B, N))
    for k in range(K):
        tk = ev_t[:, k]
        live = np.isfinite(tk)[:, None]                         # padding events do nothing
        if not live.any():
            break
        w = wT[ev_i[:, k]]                                      # [B, N] weights of this event
        a += np.where(live, w * ev_a[:, k, None], 0)
        bb += np.where(live, w * ev_b[:, k, None], 0)
        t_next = ev_t[:, k + 1] if k + 1 < K else np.full(B, np.inf, dtype)
        limit = np.minimum(t_next, t_max)[:, None]
        lower = np.maximum(tk[:, None], last)
        try_ = live & np.ones((B, N), bool)
        while True:                                             # spikes before the next event
            with np.errstate(invalid="ignore", divide="ignore"):
                disc = bb * bb - 4 * c * a
                x = np.sqrt(np.maximum(disc, 0))
                den = bb + x
                z = 2 * a / np.where(den > 0, den, 1)
                ts = tau * np.log(np.where(z > 0, z, 1))
            ok = try_ & (disc >= 0) & (den > 0) & (z > 0) & (ts > lower) & (ts <= limit)
            td = ts
            if dt is not None:
                td = grid_up(ts, dt)
                ok &= td > last_d                               # one-step refractory on the grid
                ok &= ~(td > t_max)                             # reported after the window ends
            if not ok.any():
                break
            if int(cnt.max()) >= MAX_FIRINGS:
                b, n = np.unravel_index(int(np.argmax(cnt)), cnt.shape)
                raise ValueError(
                    f"neuron {n} of sample {b} fired more than MAX_FIRINGS = {MAX_FIRINGS} times (max_spikes = {S} "
                    f"are stored, the rest counted as overflow): the weights are far too large for theta = {theta:g} "
                    f"(largest |weight| = {float(np.abs(weight).max()):.3g}). Scale the weights down or raise theta; "
                    "snnkit.bats.simulate.MAX_FIRINGS raises the cap.")
            store = ok & (cnt < S)
            slot = np.minimum(cnt, S - 1)
            times[rows[store], cols[store], slot[store]] = td[store]
            if dt is not None:
                t_cont[rows[store], cols[store], slot[store]] = ts[store]
            x_out[rows[store], cols[store], slot[store]] = x[store]
            cnt += ok
            bb = np.where(ok, bb - r * z, bb)                   # subtractive reset, through b
            last = np.where(ok, ts, last)
            last_d = np.where(ok, td, last_d)
            lower = np.where(ok, ts, lower)
            try_ = ok
    counts = np.minimum(cnt, S).astype(np.int32)
    overflow = (cnt - counts).astype(np.int32)
    return times, t_cont, x_out, counts, overflow


def cuda_outputs(B, N, S, dtype, dt):
    """The arrays a CUDA forward fills: times, t_cont (the same array without a grid), x, counts,
    overflow (``Simulation``'s fields; every kernel that simulates a layer writes these)."""
    import cupy as cp
    times = cp.full((B, N, S), cp.inf, dtype)
    t_cont = cp.full((B, N, S), cp.inf, dtype) if dt is not None else times
    return times, t_cont, cp.zeros((B, N, S), dtype), cp.empty((B, N), cp.int32), cp.empty((B, N), cp.int32)


def _simulate_cuda(weight, ev_t, ev_i, ev_a, ev_b, tau_s, theta, delta_theta, S, t_max, dt):
    """Launch ``bats_forward_<dtype>``: one thread per (sample, neuron), no batch cap."""
    import cupy as cp
    from ..kernels import function, launch_1d
    B, K = ev_t.shape
    N = weight.shape[0]
    dtype = weight.dtype
    f = np.dtype(dtype).type
    kern = function("bats_forward.cu", "bats_forward", dtype, KERNEL_DEFINES)
    wT = cp.ascontiguousarray(weight.T)
    times, t_cont, x_out, counts, overflow = cuda_outputs(B, N, S, dtype, dt)
    tau = 2.0 * tau_s
    launch_1d(kern, B * N, (ev_t, ev_i, ev_a, ev_b, wT, np.int64(B), np.int32(N), np.int32(K), np.int32(S),
                            f(tau), f(theta / tau), f(delta_theta / tau), f(t_max), f(dt or 0.0),
                            times, t_cont, x_out, counts, overflow))
    return times, t_cont, x_out, counts, overflow
