r"""Multi-step leaky integrate-and-fire neurons with a hard reset (STBP, Wu et al. 2018/2019).

Time-major layout: ``x`` is ``[T, ...]``; every neuron of ``...`` is independent, so the maths is
written on a flat ``[T, M]`` view (one CUDA thread per neuron, the time loop inside it).

Forward, for t = 0 .. T-1 (u[-1] = 0, o[-1] = 0):

    u[t] = tau * u[t-1] * (1 - o[t-1]) + x[t]         (decay, hard reset through (1 - o))
    o[t] = H(u[t] - Vth)                               (H(0) = 1: a neuron at threshold fires)

Backward, with G[t] = dL/do[t] from above, h[t] = h(u[t]) the surrogate of dH/du and
delta[T] = 0, for t = T-1 .. 0:

    dL/do[t] = G[t] - tau * u[t] * delta[t+1]          (the reset path; dropped with detach_reset)
    delta[t] = dL/do[t] * h[t] + tau * (1 - o[t]) * delta[t+1]
    dL/dx[t] = delta[t]

Surrogates h(u):
* ``"rect"`` (STBP's): h(u) = 1[|u - Vth| < aa] / (2 aa), centred at Vth (a public implementation
  centres it at 0, which is a bug).
* ``"sigmoid"`` (for checking gradients): the forward itself is made smooth,
  o = sigmoid((u - Vth) / aa), and h = o (1 - o) / aa is its exact derivative, so finite
  differences can verify the backward recurrence, the reset path included.

Memory: backward recomputes u from x (x is alive anyway: it is the previous layer's output), so the
layer keeps no [T, M] state of its own, and forward + backward move 5 arrays of T*M numbers
(read x, write o; read x, read G, write dL/dx): that is the bandwidth floor the kernel aims at.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, xp_of

SURROGATES = ("rect", "sigmoid")


def _check_settings(tau, v_th, aa, surrogate):
    tau = checks.in_range("tau", tau, 0.0, 1.0, fix="It is the decay factor (0.25 in STBP).")
    v_th = checks.positive("v_th", v_th, "The threshold must be a positive, finite number (0.4 in STBP).")
    aa = checks.positive("aa", aa, "It is the surrogate's half-width.")
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
    return tau, v_th, aa


def _check(x, tau, v_th, aa, surrogate):
    if getattr(x, "ndim", 0) < 1 or x.shape[0] < 1:
        raise ValueError(f"x must be time-major [T, ...] with T >= 1; got shape {getattr(x, 'shape', None)}")
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}); the LIF needs at least one neuron and one sample")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be a float array (float32 or float64), got dtype {x.dtype}; cast it first")
    _check_settings(tau, v_th, aa, surrogate)


# ---- NumPy twin (runs on any xp; the reference for the CUDA kernels) -----------------------------
def _spike(u, v_th, aa, surrogate):
    xp = xp_of(u)
    if surrogate == "rect":
        return (u >= v_th).astype(u.dtype)
    return 1.0 / (1.0 + xp.exp(-(u - v_th) / aa))


def _surrogate_grad(u, o, v_th, aa, surrogate):
    if surrogate == "rect":
        return (abs(u - v_th) < aa).astype(u.dtype) / (2 * aa)
    return o * (1 - o) / aa


def lif_forward_reference(x, tau=0.25, v_th=0.4, aa=0.5, surrogate="rect", return_u=False):
    """o (and u) for x [T, ...], written as the time loop of the equations."""
    xp = xp_of(x)
    T = x.shape[0]
    o = xp.empty_like(x)
    u_all = xp.empty_like(x) if return_u else None
    u = xp.zeros_like(x[0])
    o_prev = xp.zeros_like(x[0])
    for t in range(T):
        u = tau * u * (1 - o_prev) + x[t]
        o[t] = o_prev = _spike(u, v_th, aa, surrogate)
        if return_u:
            u_all[t] = u
    return (o, u_all) if return_u else o


def lif_backward_reference(grad_o, x, tau=0.25, v_th=0.4, aa=0.5, detach_reset=False, surrogate="rect"):
    """dL/dx for x [T, ...] given dL/do; u is recomputed from x (forward loop), then the reverse
    recurrence of the module docstring."""
    xp = xp_of(x)
    T = x.shape[0]
    o, u = lif_forward_reference(x, tau, v_th, aa, surrogate, return_u=True)
    grad_x = xp.empty_like(x)
    delta = xp.zeros_like(x[0])                        # delta[t+1], zero beyond the last step
    for t in range(T - 1, -1, -1):
        g = grad_o[t]
        if not detach_reset:
            g = g - tau * u[t] * delta
        delta = g * _surrogate_grad(u[t], o[t], v_th, aa, surrogate) + tau * (1 - o[t]) * delta
        grad_x[t] = delta
    return grad_x


# ---- CUDA kernel launchers (kernels/stbp_lif.cu) -------------------------------------------------
def _kernel(name, T, dtype):
    from ..kernels import function
    # T is a compile-time constant so the backward keeps u[0..T-1] in registers; no fused
    # multiply-add, so the kernel rounds exactly like the NumPy twin (spikes match bit for bit).
    return function("stbp_lif.cu", f"lif_{name}", dtype, {"STBP_T": int(T)}, ("--fmad=false",))


def _lif_forward_cuda(x, tau, v_th):
    from ..kernels import launch_1d
    xc = x if x.flags.c_contiguous else x.copy()
    T, M = x.shape[0], x.size // x.shape[0]
    o = xp_of(x).empty_like(xc)
    s = xc.dtype.type
    launch_1d(_kernel("forward", T, xc.dtype), M, (xc, o, np.int64(M), s(tau), s(v_th)))
    return o


def _lif_backward_cuda(grad_o, x, tau, v_th, aa, detach_reset):
    from ..kernels import launch_1d
    xp = xp_of(x)
    xc = xp.ascontiguousarray(x)
    gc = xp.ascontiguousarray(grad_o, dtype=xc.dtype)
    T, M = x.shape[0], x.size // x.shape[0]
    gx = xp.empty_like(xc)
    s = xc.dtype.type
    launch_1d(_kernel("backward", T, xc.dtype), M,
              (xc, gc, gx, np.int64(M), s(tau), s(v_th), s(aa), np.int32(bool(detach_reset))))
    return gx


# ---- the pure functions the layer calls (dispatch on where x lives) ------------------------------
def lif_forward(x, tau=0.25, v_th=0.4, aa=0.5, surrogate="rect"):
    """Spikes o [T, ...] of the LIF driven by x [T, ...] (kernel on CuPy arrays, twin on NumPy)."""
    _check(x, tau, v_th, aa, surrogate)
    if is_cupy_array(x) and surrogate == "rect" and x.dtype in (np.float32, np.float64):
        return _lif_forward_cuda(x, tau, v_th)
    # A NaN potential never reaches threshold: the neuron would fall silent without a word. The
    # linear layers (conv, tdBN, FC) let NaN through to their output, where it stays visible; a
    # spiking layer must refuse it. On the GPU the Trainer's per-step checks stand in (no sync here).
    if not checks.all_finite(x):
        raise ValueError("x (the LIF input) contains NaN or Inf; a NaN potential never crosses threshold, so the "
                         "neuron would be silenced. Check the layer before it (or the data).")
    return lif_forward_reference(x, tau, v_th, aa, surrogate)


def lif_backward(grad_o, x, tau=0.25, v_th=0.4, aa=0.5, detach_reset=False, surrogate="rect"):
    """dL/dx [T, ...] from dL/do and the forward input x."""
    _check(x, tau, v_th, aa, surrogate)
    if grad_o.shape != x.shape:
        raise ValueError(f"grad_o has shape {grad_o.shape}, expected the input's {x.shape}")
    if is_cupy_array(x) and surrogate == "rect" and x.dtype in (np.float32, np.float64):
        return _lif_backward_cuda(grad_o, x, tau, v_th, aa, detach_reset)
    return lif_backward_reference(grad_o, x, tau, v_th, aa, detach_reset, surrogate)


# ---- the layer -----------------------------------------------------------------------------------
class LIF:
    """A layer of multi-step LIF neurons: ``forward(x [T, ...]) -> o [T, ...]``.

    ``tau`` decay factor, ``v_th`` threshold, ``aa`` surrogate half-width, ``detach_reset`` drops
    the gradient through the reset, ``surrogate`` "rect" or "sigmoid" (smooth, for gradient checks).

    Firing-rate monitor: after ``monitor(True)`` each forward adds its spike counts per time step
    (a device-side sum, no host sync) to ``spike_count`` [T]; ``firing_rate()`` returns spikes per
    neuron per time step. Off by default, so training pays nothing for it.
    """

    def __init__(self, tau=0.25, v_th=0.4, aa=0.5, detach_reset=False, surrogate="rect", name=None):
        self.tau, self.v_th, self.aa = _check_settings(tau, v_th, aa, surrogate)
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate
        self.name = name
        self.params, self.grads = {}, {}
        self._x = None
        self.monitoring = False
        self.reset_monitor()

    def forward(self, x):
        self._x = x
        o = lif_forward(x, self.tau, self.v_th, self.aa, self.surrogate)
        if self.monitoring:
            self._record(o)
        return o

    __call__ = forward

    def backward(self, grad_o):
        if self._x is None:
            raise RuntimeError(f"{self.name or 'LIF'}.backward called before forward: run forward on the batch first")
        return lif_backward(grad_o, self._x, self.tau, self.v_th, self.aa, self.detach_reset,
                            self.surrogate)

    # -- firing-rate monitor --
    def monitor(self, on=True):
        self.monitoring = bool(on)
        return self

    def reset_monitor(self):
        self.spike_count = None          # [T] spikes summed over samples and neurons
        self.n_samples = 0
        self.n_neurons = 0

    def _record(self, o):
        T, B = o.shape[0], o.shape[1]
        per_t = o.reshape(T, -1).sum(axis=1)
        self.spike_count = per_t if self.spike_count is None else self.spike_count + per_t
        self.n_samples += B
        self.n_neurons = o[0, 0].size

    def firing_rate(self, per_step=False):
        """Spikes per neuron per time step, averaged over the recorded samples (per step: [T])."""
        if self.spike_count is None:
            raise RuntimeError("no spikes recorded: call monitor(True) and run forward first")
        from ..backend import to_numpy
        per_t = to_numpy(self.spike_count).astype(np.float64) / (self.n_samples * self.n_neurons)
        return per_t if per_step else float(per_t.mean())

    def __repr__(self):
        return (f"LIF(tau={self.tau}, v_th={self.v_th}, aa={self.aa}, detach_reset={self.detach_reset}"
                f"{'' if self.surrogate == 'rect' else ', surrogate=' + repr(self.surrogate)})")
