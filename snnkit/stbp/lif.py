r"""Multi-step leaky integrate-and-fire neurons with a hard reset (STBP, Wu et al. 2018/2019).

Time-major layout: ``x`` is ``[T, ...]``; every neuron of ``...`` is independent, so the maths is
written on a flat ``[T, M]`` view (one CUDA thread per neuron, the time loop inside it).

The neuron's parameters are one :class:`LIFParameters` (``decay`` is the paper's tau, ``v_th`` its
Vth, ``half_width`` its a). Forward, for t = 0 .. T-1 (u[-1] = 0, o[-1] = 0):

    u[t] = decay * u[t-1] * (1 - o[t-1]) + x[t]       (decay, hard reset through (1 - o))
    o[t] = H(u[t] - Vth)                               (H(0) = 1: a neuron at threshold fires)

Backward, with G[t] = dL/do[t] from above, h[t] = h(u[t]) the surrogate of dH/du and
delta[T] = 0, for t = T-1 .. 0:

    dL/do[t] = G[t] - decay * u[t] * delta[t+1]        (the reset path; dropped with detach_reset)
    delta[t] = dL/do[t] * h[t] + decay * (1 - o[t]) * delta[t+1]
    dL/dx[t] = delta[t]

Surrogates h(u):
* ``"rect"`` (STBP's): h(u) = 1[|u - Vth| < a] / (2 a) with a = ``half_width``, centred at Vth (a
  public implementation centres it at 0, which is a bug).
* ``"sigmoid"`` (for checking gradients): the forward itself is made smooth,
  o = sigmoid((u - Vth) / a), and h = o (1 - o) / a is its exact derivative, so finite
  differences can verify the backward recurrence, the reset path included.

Memory: backward recomputes u from x (x is alive anyway: it is the previous layer's output), so the
layer keeps no [T, M] state of its own, and forward + backward move 5 arrays of T*M numbers
(read x, write o; read x, read G, write dL/dx): that is the bandwidth floor the kernel aims at.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import checks
from ..backend import is_cupy_array, xp_of
from ..nn.protocol import require_forward

SURROGATES = ("rect", "sigmoid")


@dataclass(frozen=True)
class LIFParameters:
    r"""The STBP neuron's parameters (Wu et al. 2018), shared by the layers, the pure functions, the
    kernel launchers, the models and the notebooks: one place for the defaults.

    ``decay``
        :math:`\tau` in the paper: the factor the potential keeps per step, ``u[t] = decay u[t-1] ...``
        (a number in [0, 1], not a time constant; it equals :math:`\beta = e^{-\Delta t/\tau_m}`
        of the other methods). 0.25 in STBP.
    ``v_th``
        :math:`V_{th}`, the firing threshold (``theta`` in BATS, ``threshold`` in S3GD: the README
        glossary maps the names). 0.4 in STBP.
    ``half_width``
        :math:`a` in the paper (``aa`` in its code): the rectangular surrogate
        ``h(u) = 1[|u - v_th| < half_width] / (2 half_width)`` passes gradient inside a window of this
        half-width around the threshold. 0.5 in STBP.
    ``surrogate``
        "rect" (STBP's) or "sigmoid" (a smooth forward whose exact derivative is the backward, for
        gradient checks).
    ``detach_reset``
        drop the gradient through the reset path.

    Checked when made: a bad value raises ValueError naming the field and its meaning."""

    decay: float = 0.25
    v_th: float = 0.4
    half_width: float = 0.5
    surrogate: str = "rect"
    detach_reset: bool = False

    def __post_init__(self):
        set_ = object.__setattr__               # frozen: normalize the checked values once, here
        set_(self, "decay", checks.in_range("decay", self.decay, 0.0, 1.0,
                                            fix="It is the factor the potential keeps per step (0.25 in STBP)."))
        set_(self, "v_th", checks.positive("v_th", self.v_th,
                                           "The threshold must be a positive, finite number (0.4 in STBP)."))
        set_(self, "half_width", checks.positive("half_width", self.half_width,
                                                 "It is the surrogate window's half-width (0.5 in STBP)."))
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        set_(self, "detach_reset", bool(self.detach_reset))


STBP = LIFParameters()
"""The published setting (decay 0.25, threshold 0.4, surrogate half-width 0.5)."""


def _as_parameters(neuron):
    if not isinstance(neuron, LIFParameters):
        raise TypeError(f"neuron must be snnkit.stbp.LIFParameters (e.g. LIFParameters(v_th=0.5)); "
                        f"got {type(neuron).__name__}")
    return neuron


def _check(x, neuron):
    if getattr(x, "ndim", 0) < 1 or x.shape[0] < 1:
        raise ValueError(f"x must be time-major [T, ...] with T >= 1; got shape {getattr(x, 'shape', None)}")
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}); the LIF needs at least one neuron and one sample")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be a float array (float32 or float64), got dtype {x.dtype}; cast it first")
    return _as_parameters(neuron)


# ---- NumPy twin (runs on any xp; the reference for the CUDA kernels) -----------------------------
def _spike(u, neuron):
    xp = xp_of(u)
    if neuron.surrogate == "rect":
        return (u >= neuron.v_th).astype(u.dtype)
    return 1.0 / (1.0 + xp.exp(-(u - neuron.v_th) / neuron.half_width))


def _surrogate_grad(u, o, neuron):
    a = neuron.half_width
    if neuron.surrogate == "rect":
        return (abs(u - neuron.v_th) < a).astype(u.dtype) / (2 * a)
    return o * (1 - o) / a


def lif_forward_reference(x, neuron=STBP, return_u=False):
    """o (and u) for x [T, ...], written as the time loop of the equations."""
    xp = xp_of(x)
    T = x.shape[0]
    decay = neuron.decay
    o = xp.empty_like(x)
    u_all = xp.empty_like(x) if return_u else None
    u = xp.zeros_like(x[0])
    o_prev = xp.zeros_like(x[0])
    for t in range(T):
        u = decay * u * (1 - o_prev) + x[t]
        o[t] = o_prev = _spike(u, neuron)
        if return_u:
            u_all[t] = u
    return (o, u_all) if return_u else o


def lif_backward_reference(grad_o, x, neuron=STBP):
    """dL/dx for x [T, ...] given dL/do; u is recomputed from x (forward loop), then the reverse
    recurrence of the module docstring."""
    xp = xp_of(x)
    T = x.shape[0]
    decay = neuron.decay
    o, u = lif_forward_reference(x, neuron, return_u=True)
    grad_x = xp.empty_like(x)
    delta = xp.zeros_like(x[0])                        # delta[t+1], zero beyond the last step
    for t in range(T - 1, -1, -1):
        g = grad_o[t]
        if not neuron.detach_reset:
            g = g - decay * u[t] * delta
        delta = g * _surrogate_grad(u[t], o[t], neuron) + decay * (1 - o[t]) * delta
        grad_x[t] = delta
    return grad_x


# ---- CUDA kernel launchers (kernels/stbp_lif.cu) -------------------------------------------------
def _per_thread(T, dtype):
    """Neurons per thread of the LIF kernels. At T <= 2 a thread has only two loads per array in
    flight, too few bytes to keep the memory system busy, so it takes 16 bytes of neurons (4 floats,
    2 doubles) as one vector load; from T = 3 on its T scalar loads already do. Measured on an H200
    at T = 2 (benchmarks/RESULTS.md, STBP, ``bench_stbp.py --lif --lif-variants``): 4 floats per
    thread 85% of the bandwidth floor, 2: 83%, 8: 74%; 4 or 8 at T = 4 stayed below one."""
    return 16 // np.dtype(dtype).itemsize if int(T) <= 2 else 1


def _kernel(name, T, dtype, per_thread=None):
    from ..kernels import function
    # T is a compile-time constant so the backward keeps u[0..T-1] in registers; no fused
    # multiply-add, so the kernel rounds exactly like the NumPy twin (spikes match bit for bit).
    V = _per_thread(T, dtype) if per_thread is None else int(per_thread)
    return function("stbp_lif.cu", f"lif_{name}", dtype, {"STBP_T": int(T), "STBP_V": V}, ("--fmad=false",)), V


def _launch(kernel, V, M, arrays, scalars, block=256):
    """One thread per V neurons; ``aligned`` (vector loads) when M is a multiple of V and every
    array starts on a V-element boundary, so that every row t * M does too."""
    from ..kernels import launch_1d
    itemsize = arrays[0].dtype.itemsize
    aligned = M % V == 0 and all(a.data.ptr % (V * itemsize) == 0 for a in arrays)
    launch_1d(kernel, -(-M // V), (*arrays, np.int64(M), *scalars, np.int32(aligned)), block=block)


def _lif_forward_cuda(x, neuron, per_thread=None):
    xc = x if x.flags.c_contiguous else x.copy()
    T, M = x.shape[0], x.size // x.shape[0]
    o = xp_of(x).empty_like(xc)
    s = xc.dtype.type
    kernel, V = _kernel("forward", T, xc.dtype, per_thread)
    _launch(kernel, V, M, (xc, o), (s(neuron.decay), s(neuron.v_th)))
    return o


def _lif_backward_cuda(grad_o, x, neuron, per_thread=None):
    xp = xp_of(x)
    xc = xp.ascontiguousarray(x)
    gc = xp.ascontiguousarray(grad_o, dtype=xc.dtype)
    T, M = x.shape[0], x.size // x.shape[0]
    gx = xp.empty_like(xc)
    s = xc.dtype.type
    kernel, V = _kernel("backward", T, xc.dtype, per_thread)
    _launch(kernel, V, M, (xc, gc, gx),
            (s(neuron.decay), s(neuron.v_th), s(neuron.half_width), np.int32(neuron.detach_reset)))
    return gx


# ---- the pure functions the layer calls (dispatch on where x lives) ------------------------------
def lif_forward(x, neuron=STBP):
    """Spikes o [T, ...] of the LIF driven by x [T, ...] (kernel on CuPy arrays, twin on NumPy);
    ``neuron`` is a :class:`LIFParameters`."""
    neuron = _check(x, neuron)
    if is_cupy_array(x) and neuron.surrogate == "rect" and x.dtype in (np.float32, np.float64):
        return _lif_forward_cuda(x, neuron)
    # A NaN potential never reaches threshold: the neuron would fall silent without a word. The
    # linear layers (conv, tdBN, FC) let NaN through to their output, where it stays visible; a
    # spiking layer must refuse it. On the GPU the Trainer's per-step checks stand in (no sync here).
    if not checks.all_finite(x):
        raise ValueError("x (the LIF input) contains NaN or Inf; a NaN potential never crosses threshold, so the "
                         "neuron would be silenced. Check the layer before it (or the data).")
    return lif_forward_reference(x, neuron)


def lif_backward(grad_o, x, neuron=STBP):
    """dL/dx [T, ...] from dL/do and the forward input x."""
    neuron = _check(x, neuron)
    if grad_o.shape != x.shape:
        raise ValueError(f"grad_o has shape {grad_o.shape}, expected the input's {x.shape}")
    if is_cupy_array(x) and neuron.surrogate == "rect" and x.dtype in (np.float32, np.float64):
        return _lif_backward_cuda(grad_o, x, neuron)
    return lif_backward_reference(grad_o, x, neuron)


# ---- the layer -----------------------------------------------------------------------------------
class LIF:
    """A layer of multi-step LIF neurons: ``forward(x [T, ...]) -> o [T, ...]``; ``neuron`` is a
    :class:`LIFParameters` (decay, threshold, surrogate window, surrogate, detach_reset).

    Firing-rate monitor: after ``monitor(True)`` each forward adds its spike counts per time step
    (a device-side sum, no host sync) to ``spike_count`` [T]; ``firing_rate()`` returns spikes per
    neuron per time step. Off by default, so training pays nothing for it.
    """

    def __init__(self, neuron=STBP, name=None):
        self.neuron = _as_parameters(neuron)
        self.name = name
        self.params, self.grads = {}, {}
        self._x = None
        self.monitoring = False
        self.reset_monitor()

    def forward(self, x):
        self._x = x
        o = lif_forward(x, self.neuron)
        if self.monitoring:
            self._record(o)
        return o

    __call__ = forward

    def backward(self, grad_o, need_input_grad=True):
        require_forward(self, self._x)
        return lif_backward(grad_o, self._x, self.neuron) if need_input_grad else None

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
        n = self.neuron
        return (f"LIF(decay={n.decay}, v_th={n.v_th}, half_width={n.half_width}, detach_reset={n.detach_reset}"
                f"{'' if n.surrogate == 'rect' else ', surrogate=' + repr(n.surrogate)})")
