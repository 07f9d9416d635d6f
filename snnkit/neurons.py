r"""The toolkit's three LIF neurons in one notation: one input, three clocks (notebook 01).

All three are the leaky integrator of an RC circuit, ``tau du/dt = -u + R I(t)``, with a threshold
``theta`` and a reset. They differ in the clock and in the reset:

* **BATS** (``snnkit/bats/neuron.py``): continuous time, an exponential synaptic current ``v``::

      du/dt = -u/tau + v,   dv/dt = -v/tau_s,   input spike j:  v += w_j,   tau = 2 tau_s
      u >= theta  ->  spike at the exact crossing time,  u -= delta_theta   (subtractive reset)

* **S3GD** (``snnkit/s3gd/lif.py``): one step of ``dt``, ``beta = exp(-dt/tau)``, threshold 1::

      V[t] = beta V[t-1] + h[t] - S[t-1],   S[t] = H(V[t] - 1)   (subtractive reset, detached)

* **STBP** (``snnkit/stbp/lif.py``): the same step with a hard reset; its ``tau`` is the decay
  factor ``beta``, not a time constant::

      u[t] = beta u[t-1] (1 - o[t-1]) + x[t],   o[t] = H(u[t] - v_th)

Solving the ODE over one step of length ``dt`` gives the discrete update exactly,
``u(t_k) = beta u(t_{k-1}) + h[k]`` with ``h[k] = int_{t_{k-1}}^{t_k} exp(-(t_k - s)/tau) v(s) ds``
(Euler's step replaces ``beta`` by ``1 - dt/tau`` and the integral by ``dt v``). :func:`step_input`
computes that ``h[k]`` for BATS input spikes from the reset-free BATS potential itself, so
:func:`three_clocks` drives all three neurons with the same input: until the first spike the
discrete potentials equal the continuous one at every step; afterwards the clocks and resets differ.

Everything is measured in units of the threshold (``u / theta``): the S3GD reset subtracts the
spike itself (1), which is the threshold only in those units. The functions call the toolkit's own
simulators (no re-implementation); this module only wires them together for the lesson.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bats import backward as bats_backward
from .bats import simulate as bats_simulate
from .bats.neuron import potential
from .s3gd.lif import fast_sigmoid_grad, lif_delta_dense, lif_simulate
from .stbp.lif import LIFParameters as STBPParameters
from .stbp.lif import lif_backward as stbp_backward
from .stbp.lif import lif_forward_reference as stbp_forward

__all__ = ["decay_factor", "euler_factor", "time_constant", "step_input", "three_clocks", "ThreeClocks",
           "surrogates", "exact_gradient_curve", "critical_weight", "dead_neuron_gradients",
           "first_spike_step", "SYMBOLS", "symbol_table"]


def _positive(name, value, fix):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if not v > 0 or math.isinf(v):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r}); {fix}")
    return v


def decay_factor(dt, tau):
    """``beta = exp(-dt / tau)``: what is left of the potential after one step without input
    (S3GD's ``beta``, STBP's ``tau``). ``dt`` and ``tau`` in the same unit."""
    dt = _positive("dt", dt, "the time step must be positive")
    tau = _positive("tau", tau, "the membrane time constant must be positive")
    return math.exp(-dt / tau)


def euler_factor(dt, tau):
    """``1 - dt / tau``: the forward-Euler approximation of :func:`decay_factor` (first order in dt/tau)."""
    return 1.0 - _positive("dt", dt, "the time step must be positive") / _positive(
        "tau", tau, "the membrane time constant must be positive")


def time_constant(beta, dt):
    """The membrane time constant ``tau = -dt / ln(beta)`` of a decay factor ``beta`` in (0, 1)."""
    beta = float(beta)
    if not 0 < beta < 1:
        raise ValueError(f"beta must lie in (0, 1) to have a time constant (got {beta}); beta = exp(-dt/tau)")
    return -_positive("dt", dt, "the time step must be positive") / math.log(beta)


def step_input(t_in, w, tau_s, theta, dt, t_end):
    """The input per step ``h[k]`` (in units of ``theta``) that BATS input spikes deliver to a
    discrete-time neuron, on the grid ``t_k = k dt``, k = 0 .. round(t_end/dt).

    ``h[k] = (u0(t_k) - beta u0(t_{k-1})) / theta`` where ``u0`` is the reset-free BATS potential
    (:func:`snnkit.bats.neuron.potential` without output spikes) and ``beta = exp(-dt/(2 tau_s))``:
    the charge of the synaptic current during the step, decayed to the step's end. Returns
    ``(t_k, h, h_per_input)``, the last ``[K, n_inputs]`` for unit weights (h is linear in w)."""
    dt = _positive("dt", dt, "the time step must be positive")
    t_end = _positive("t_end", t_end, "the simulated window must be positive")
    t_in = np.asarray(t_in, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    if t_in.shape != w.shape:
        raise ValueError(f"t_in and w need one weight per input spike; got {t_in.size} times and {w.size} weights")
    n = int(round(t_end / dt)) + 1
    t_k = np.arange(n) * dt
    beta = decay_factor(dt, 2.0 * tau_s)
    per = np.empty((n, t_in.size))
    for j in range(t_in.size):                     # one column per input, unit weight
        u0 = potential(t_k, t_in[j:j + 1], [1.0], [], tau_s, theta) / theta
        per[:, j] = u0 - beta * np.concatenate([[0.0], u0[:-1]])
    return t_k, per @ w, per


@dataclass
class ThreeClocks:
    """Traces of the three neurons for one input (potentials in units of the threshold)."""
    t: np.ndarray              # fine grid (s) of the continuous trace
    u_bats: np.ndarray         # BATS u(t) / theta on t
    spikes_bats: np.ndarray    # exact spike times (s)
    t_k: np.ndarray            # step times k dt (s)
    h: np.ndarray              # input per step (units of theta)
    v_s3gd: np.ndarray         # S3GD V[k]
    spikes_s3gd: np.ndarray    # step times of S3GD spikes (s)
    u_stbp: np.ndarray         # STBP u[k]
    spikes_stbp: np.ndarray    # step times of STBP spikes (s)
    u_bats_steps: np.ndarray   # BATS u(t_k) / theta, for comparison on the grid
    beta: float
    dt: float


def three_clocks(t_in, w, tau_s=0.03, theta=0.01, dt=1e-3, t_end=0.2, n_points=1201) -> ThreeClocks:
    """Drive one BATS, one S3GD and one STBP neuron with the same input (see the module docstring).

    BATS: :func:`snnkit.bats.simulate` and :func:`snnkit.bats.neuron.potential`; S3GD:
    :func:`snnkit.s3gd.lif.lif_simulate` with threshold 1; STBP:
    :func:`snnkit.stbp.lif.lif_forward_reference` with ``decay = beta`` and ``v_th = 1``."""
    t_in = np.asarray(t_in, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    t_k, h, _ = step_input(t_in, w, tau_s, theta, dt, t_end)
    beta = decay_factor(dt, 2.0 * tau_s)
    order = np.argsort(t_in)
    sim = bats_simulate(w[order][None, :], t_in[order][None, :, None], tau_s, theta, max_spikes=256, t_max=t_end)
    spikes = np.asarray(sim.times[0, 0, :int(sim.counts[0, 0])], dtype=np.float64)
    t = np.linspace(0.0, t_end, n_points)
    u = potential(t, t_in, w, spikes, tau_s, theta) / theta
    u_steps = potential(t_k, t_in, w, spikes, tau_s, theta) / theta
    V, S = lif_simulate(h[None, :, None], beta, 1.0)
    o, u_stbp = stbp_forward(h[:, None], STBPParameters(decay=beta, v_th=1.0), return_u=True)
    return ThreeClocks(t, u, spikes, t_k, h, V[0, :, 0], t_k[S[0, :, 0] > 0], u_stbp[:, 0], t_k[o[:, 0] > 0],
                       u_steps, beta, float(dt))


def first_spike_step(current, beta, n_steps=1000):
    """Index of the first S3GD spike (threshold 1) under a constant input ``current`` per step,
    by running :func:`snnkit.s3gd.lif.lif_simulate`; None when none comes within ``n_steps``."""
    _, S = lif_simulate(np.full((1, int(n_steps), 1), float(current)), float(beta), 1.0)
    hit = np.flatnonzero(S[0, :, 0] > 0)
    return int(hit[0]) if hit.size else None


# ---- gradients: surrogates against the exact spike-time gradient --------------------------------
def surrogates(u, scale=100.0, half_width=0.5):
    """The surrogate derivatives dS/du of the discrete neurons at potentials ``u`` (units of theta):
    S3GD's fast sigmoid ``1/(scale |u - 1| + 1)^2`` (:func:`snnkit.s3gd.lif.fast_sigmoid_grad`) and
    STBP's rectangle ``1[|u - 1| < a] / (2 a)`` (a = ``half_width``), read off
    :func:`snnkit.stbp.lif.lif_backward` on a one-step input (then dL/dx = dL/do h(u))."""
    u = np.asarray(u, dtype=np.float64).ravel()
    rect = stbp_backward(np.ones((1, u.size)), u[None, :],
                         STBPParameters(decay=0.25, v_th=1.0, half_width=float(half_width)))[0]
    return {"S3GD fast sigmoid": fast_sigmoid_grad(u, 1.0, float(scale)), "STBP rectangle": rect}


def critical_weight(tau_s, theta):
    """Smallest weight of one input spike that makes a BATS neuron spike: ``4 theta / tau``.

    The potential of one input peaks at ``u_max = w tau / 4`` (at ``t - t_j = tau ln 2``, since
    ``tau = 2 tau_s``), and ``u_max >= theta`` is the discriminant condition ``b^2 >= 4ac``."""
    return 4.0 * theta / (2.0 * _positive("tau_s", tau_s, "the synaptic time constant must be positive"))


def exact_gradient_curve(peaks, tau_s=0.03, theta=0.01):
    """BATS's exact gradient of the first spike time against the weight of a single input spike at
    t = 0, for weights whose peak potential is ``peaks`` (units of theta):
    ``(w, t_first, dt_first/dw)`` from :func:`snnkit.bats.simulate` and :func:`snnkit.bats.backward`
    (both 0 / +inf where the neuron does not spike: no spike time, nothing to differentiate)."""
    peaks = np.asarray(peaks, dtype=np.float64).ravel()
    w = peaks * critical_weight(tau_s, theta)
    sim = bats_simulate(w[:, None], np.zeros((1, 1, 1)), tau_s, theta, max_spikes=1)
    e = np.ones_like(sim.times)
    dw, _ = bats_backward(w[:, None], sim, e, tau_s, theta, need_input_grad=False)
    return w, sim.times[0, :, 0], dw[:, 0]


def dead_neuron_gradients(t_in, w, tau_s=0.03, theta=0.01, dt=1e-3, t_end=0.2, scale=100.0, half_width=0.5):
    """dL/dw of each input weight for the three neurons, and their spike counts.

    Loss: BATS ``L = t_first`` (e = 1 on its first spike slot: "spike earlier"); S3GD and STBP
    ``L = -sum_k S[k]`` ("spike more"). A BATS neuron without a spike has no spike time, so its
    gradient is exactly 0; the surrogates give a gradient wherever the potential came near the
    threshold. Returns ``{model: (n_spikes, dL/dw [n_inputs])}``."""
    t_in = np.asarray(t_in, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    sim = bats_simulate(w[None, :], t_in[None, :, None], tau_s, theta, max_spikes=1, t_max=t_end)
    dw_bats, _ = bats_backward(w[None, :], sim, np.ones_like(sim.times), tau_s, theta, need_input_grad=False)
    t_k, h, per = step_input(t_in, w, tau_s, theta, dt, t_end)
    beta = decay_factor(dt, 2.0 * tau_s)
    V, S = lif_simulate(h[None, :, None], beta, 1.0)
    d = lif_delta_dense(-np.ones_like(V), V, beta, 1.0, float(scale))[0, :, 0]       # dL/dh[k]
    stbp = STBPParameters(decay=beta, v_th=1.0, half_width=float(half_width))
    o = stbp_forward(h[:, None], stbp)
    dx = stbp_backward(-np.ones_like(o), h[:, None], stbp)[:, 0]
    n_bats = int(sim.counts[0, 0]) + int(sim.overflow[0, 0])
    return {"BATS (exact)": (n_bats, dw_bats[0]),
            "S3GD (fast sigmoid)": (int(S.sum()), d @ per),
            "STBP (rectangle)": (int(o.sum()), dx @ per)}


# ---- the notation and where each symbol lives in the code -------------------------------------------
# (symbol, meaning, BATS, S3GD, STBP): code names in backticks are checked against the sources by
# tests/test_lesson_00_02.py, so a rename in the code cannot leave the table stale.
SYMBOLS = [
    (r"$u$", "membrane potential", "`u` (`potential`)", "`V` [B,T,N]", "`u` [T,...]"),
    (r"$v$", "synaptic current (BATS only)", "`v` (in `a`, `b`)", "none: input acts at once", "none: input acts at once"),
    (r"$w$", "synaptic weight", "`weight` [N_out,N_in]", "`weight` [N_in,N]", "`weight` of `Linear`/`Conv2d`"),
    (r"$h[t]$", "input per step", "none (event driven)", "`h` = `S_in` W", "`x`"),
    (r"$\tau_s$", "synaptic time constant (s)", "`tau_s`", "none", "none"),
    (r"$\tau$", "membrane time constant (s)", "`tau` = 2 `tau_s`", "in `beta`", "in `decay` (see beta)"),
    (r"$\Delta t$", "time step (s)", "`dt` (None: continuous)", "folded into `beta`", "folded into `decay`"),
    (r"$\beta = e^{-\Delta t/\tau}$", "decay per step", "none", "`beta`", "`decay` (paper: tau; 0.25)"),
    (r"$\vartheta$", "threshold", "`theta`", "`threshold` (1)", "`v_th` (0.4)"),
    (r"$\Delta\vartheta$", "reset (subtracted)", "`delta_theta` (= `theta`)", "`S` (1, detached)", "hard: u -> 0 via `o`"),
    (r"$S$, $o$", "output spikes", "`times` [B,N,S], `counts`", "`S` [B,T,N]", "`o` [T,B,...]"),
    (r"$t_j, t_k$", "input / output spike times", "`in_times`, `times`", "step index", "step index"),
    (r"$a, b, c$", "closed-form sums (BATS)", "`a`, `bb`, `c`", "none", "none"),
    (r"$z = e^{t/\tau}$, $x$", "root variable, sqrt of discriminant", "`z`, `x`", "none", "none"),
    (r"$\sigma'(u)$", "surrogate of dS/du", "none: exact dt/dw", "`fast_sigmoid_grad`, `scale`", "`_surrogate_grad`, `half_width` (paper: a)"),
    (r"$\delta$", "active band half-width (S3GD)", "none", "`delta`", "none"),
    ("max spikes", "slots per neuron", "`max_spikes`", "none (raster)", "none (raster)"),
]

SOURCES = {"BATS": ("snnkit/bats/neuron.py", "snnkit/bats/simulate.py", "snnkit/bats/layers.py"),
           "S3GD": ("snnkit/s3gd/lif.py",),
           "STBP": ("snnkit/stbp/lif.py", "snnkit/stbp/layers.py", "snnkit/stbp/conv.py")}


def symbol_table() -> str:
    """:data:`SYMBOLS` as a markdown table (shown by notebook 01, copied into the README's Glossary)."""
    rows = ["| symbol | meaning | BATS (`snnkit/bats`) | S3GD (`snnkit/s3gd`) | STBP (`snnkit/stbp`) |",
            "|---|---|---|---|---|"]
    rows += ["| " + " | ".join(r) + " |" for r in SYMBOLS]
    return "\n".join(rows)
