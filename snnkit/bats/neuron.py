"""The BATS neuron: a current-based LIF whose spike times have a closed form.

Model (Bacho & Chu 2023), with ``tau = 2 tau_s`` fixed::

    du/dt = -u/tau + v          dv/dt = -v/tau_s          input spike j at t_j:  v += w_j
    u >= theta  ->  spike, then  u -= delta_theta          (subtractive reset, v untouched)

One input spike gives ``u(t) = w tau (exp(-(t-t_j)/tau) - exp(-(t-t_j)/tau_s))``. Writing
``z = exp(t/tau)`` (so ``exp(-t/tau_s) = z**-2``) and summing over the events before ``t``::

    a = sum_j w_j exp(t_j/tau_s)
    b = sum_j w_j exp(t_j/tau) - (delta_theta/tau) sum_{earlier output spikes k} z_k
    u(t)/tau = b/z - a/z**2

so ``u = theta`` is the quadratic ``c z**2 - b z + a = 0`` with ``c = theta/tau``. Its earliest root,
in the cancellation-free form, is::

    x  = sqrt(b**2 - 4 a c)          z* = 2a / (b + x)          t* = tau ln z*

A crossing is rejected when ``b**2 - 4ac < 0``, ``b + x <= 0``, ``z* <= 0``, ``t*`` is not later than
the last event of the neuron (current input or previous output), ``t* > t_max`` or ``t*`` is later
than the next input spike (the next input changes ``a`` and ``b``, so the root is recomputed there).
An accepted spike applies its reset to ``b`` (``b -= (delta_theta/tau) z*``) and the neuron is
tried again: several output spikes can fall between two inputs.

Time discretization (optional ``dt``): the network's input times (data) move up to the next grid
point ``grid_up(t) = (floor(t/dt) + 1) dt`` (a time on the grid moves a full ``dt``); the continuous
``t*`` is computed from the inputs and reported as ``grid_up(t*)``; a spike whose grid time is not
later than the neuron's previous grid spike is rejected (a one-step refractory period), as is one
whose grid time lies past ``t_max`` (the neuron reports at its grid time, after the window). A layer on
the grid hands its grid times to the next layer, which takes them as they are (``SpikeTrains.grid``,
``simulate(on_grid=True)``), as the study's code does: only data move up to the grid. The reset uses
the continuous ``z*``, and the backward treats the rounding as the identity.

This module holds the constants and checks shared by the simulator and the backward.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import checks
from ..backend import xp_of
from ..spikes import SpikeTrains

__all__ = ["LIFParameters", "check_exp_range", "check_neuron", "check_times", "grid_up", "on_grid", "potential",
           "X_GUARD"]

# f1 = tau/(x z) and f2 = tau/x diverge when a trajectory only grazes threshold (x -> 0: the
# spike time is infinitely sensitive there). The backward uses max(x, X_GUARD * c z), where c z is
# the scale of b at a crossing; this caps the gradient of grazing spikes without touching others.
X_GUARD = 1e-4


def check_neuron(tau_s, theta, delta_theta, max_spikes, t_max, dt):
    """Validate the neuron settings; return them as Python scalars (delta_theta defaults to theta).

    tau_s, theta, delta_theta and dt must be finite and > 0 (an infinite threshold or time constant
    silences every neuron); t_max > 0 may be +inf (no limit); dt < t_max (a grid step as long as
    the window puts every spike past it); max_spikes an integer >= 1."""
    tau_s = checks.positive("tau_s", tau_s, "It is the synaptic time constant in the units of the spike times.")
    theta = checks.positive("theta", theta, "The threshold must be a positive, finite number.")
    delta_theta = theta if delta_theta is None else checks.positive(
        "delta_theta", delta_theta, "The reset must lower u; use delta_theta=theta for the paper's setting.")
    max_spikes = checks.integer("max_spikes", max_spikes, 1, "It is the number of spike slots per neuron.")
    t_max = checks.positive("t_max", t_max, "Use t_max=float('inf') for no limit.", allow_inf=True)
    if dt is not None:
        dt = checks.positive("dt", dt, "Use dt=None for continuous time.")
        if dt >= t_max:
            raise ValueError(f"dt = {dt:g} is not shorter than t_max = {t_max:g}: every spike would be rounded up "
                             "to a grid time past t_max and the layer could never fire. Use dt much smaller than "
                             "t_max (or dt=None for continuous time).")
    return tau_s, theta, delta_theta, max_spikes, t_max, dt


@dataclasses.dataclass(frozen=True)
class LIFParameters:
    r"""The BATS neuron's parameters (Bacho & Chu 2023), shared by the layers, the study, the
    notebooks and the benchmarks (the pure functions ``simulate`` / ``backward`` take the same
    values as scalars, in the paper's notation, so that they read like the equations).

    ``tau_s``
        :math:`\tau_s`, the synaptic time constant, in the units of the spike times (the membrane's
        is :math:`\tau = 2\tau_s`, :attr:`tau`).
    ``theta``
        :math:`\vartheta`, the firing threshold (``v_th`` in STBP, ``threshold`` in S3GD: the
        README glossary maps the names).
    ``delta_theta``
        :math:`\Delta\vartheta`, what a spike subtracts from u; None means ``theta`` (the paper's
        setting), resolved when made.
    ``max_spikes``
        spike slots per neuron (extra spikes are counted in ``overflow``, not stored).
    ``t_max``
        the end of the trial (+inf: no limit). On a grid a spike counts when its grid time is
        ``<= t_max``.
    ``dt``
        None for continuous time, else the grid step of the discretization study.

    Checked when made (:func:`check_neuron`): a bad value raises ValueError naming the field."""

    tau_s: float
    theta: float
    delta_theta: float | None = None
    max_spikes: int = 1
    t_max: float = math.inf
    dt: float | None = None

    def __post_init__(self):
        values = check_neuron(self.tau_s, self.theta, self.delta_theta, self.max_spikes, self.t_max, self.dt)
        for field, v in zip(("tau_s", "theta", "delta_theta", "max_spikes", "t_max", "dt"), values):
            object.__setattr__(self, field, v)          # frozen: store the checked values once, here

    @property
    def tau(self) -> float:
        """The membrane time constant, 2 tau_s (fixed by the model)."""
        return 2.0 * self.tau_s

    def replace(self, **changes) -> "LIFParameters":
        """A copy with ``changes`` (checked again), e.g. ``neuron.replace(dt=1e-3)``. A new ``theta``
        carries ``delta_theta`` along when it equalled the old threshold (the paper's setting)."""
        if "theta" in changes and "delta_theta" not in changes and self.delta_theta == self.theta:
            changes["delta_theta"] = None
        return dataclasses.replace(self, **changes)


class NeuronLayer:
    """What LIFDense and ConvLIF share: ``neuron`` (a :class:`LIFParameters`) and read-only views of
    its fields; ``dt`` may be set (the discretization is a property of the simulation, not of the
    weights: ``study.set_dt`` and notebook 05's slider move a trained network to another grid)."""

    neuron: LIFParameters

    tau_s = property(lambda self: self.neuron.tau_s)
    theta = property(lambda self: self.neuron.theta)
    delta_theta = property(lambda self: self.neuron.delta_theta)
    max_spikes = property(lambda self: self.neuron.max_spikes)
    t_max = property(lambda self: self.neuron.t_max)

    @property
    def dt(self):
        return self.neuron.dt

    @dt.setter
    def dt(self, value):
        self.neuron = self.neuron.replace(dt=value)


def as_parameters(neuron) -> LIFParameters:
    """``neuron`` if it is a :class:`LIFParameters`, else a TypeError that shows how to make one."""
    if not isinstance(neuron, LIFParameters):
        raise TypeError("neuron must be snnkit.bats.LIFParameters, e.g. LIFParameters(tau_s=0.13, theta=0.1, "
                        f"max_spikes=3, t_max=0.2); got {type(neuron).__name__}")
    return neuron


def check_times(in_times, n_in, name="in_times", values=True):
    """``in_times`` (array [B, N_in, S] or SpikeTrains) -> array; ValueError naming the problem.

    Spike times are >= 0 (the trial starts at 0) or +inf (no spike), sorted along the slot axis.
    The value checks (NaN, negative or -inf, sorted slots) are one fused reduction (one device sync
    on a GPU); ``values=False`` keeps only the shape and dtype checks."""
    if isinstance(in_times, SpikeTrains):
        in_times = in_times.times
    t = checks.real_array(name, in_times)
    if t.ndim != 3:
        raise ValueError(f"{name} must be [batch, n_in, slots] with +inf padding; got shape {tuple(t.shape)}. "
                         "For one spike per input use times[:, :, None].")
    if t.shape[1] != n_in:
        raise ValueError(f"{name} has {t.shape[1]} inputs but the weight has {n_in} columns "
                         f"(weight is [n_out, n_in]); got {name}.shape={tuple(t.shape)}")
    if t.shape[2] < 1:
        raise ValueError(f"{name} needs at least one slot per input (got shape {tuple(t.shape)})")
    if t.shape[0] < 1:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); pass at least one sample")
    if not values:
        return t
    xp = xp_of(t)
    bad = xp.isnan(t) | (t < 0)
    if t.shape[2] > 1:
        bad[:, :, 1:] |= t[:, :, 1:] < t[:, :, :-1]
    if bool(bad.any()):
        if bool(xp.isnan(t).any()):
            raise ValueError(f"{name} contains NaN; mark 'no spike' with +inf")
        if bool((t < 0).any()):
            raise ValueError(f"{name} contains negative times (or -inf); spike times are >= 0 (the trial starts "
                             "at 0) or +inf for 'no spike'. Shift the times so that the earliest is >= 0.")
        raise ValueError(f"{name} must be sorted along the slot axis (+inf last); use xp.sort({name}, axis=2)")
    return t


# The closed form works with exp(t / tau_s) (and its square root's square): beyond these many
# tau_s the float type overflows, and a silent inf would mean silently missing spikes.
EXP_LIMIT = {np.dtype(np.float32): 80.0, np.dtype(np.float64): 700.0}


def check_exp_range(in_times, tau_s, dtype, name="in_times", t_max=float("inf")):
    """ValueError when a spike time that matters (finite, <= t_max) is too many tau_s for
    ``dtype``. ``in_times=None`` checks t_max alone (free: layers do it when built); otherwise one
    device sync on a GPU."""
    limit = EXP_LIMIT[checks.float_dtype("dtype", dtype)]
    if in_times is None:
        t_hi, what = t_max, "t_max"
    else:
        xp = xp_of(in_times)
        keep = xp.isfinite(in_times) & (in_times <= t_max)
        t_hi = float(xp.where(keep, in_times, 0).max()) if in_times.size else 0.0
        what = f"{name}: the latest spike at t"
    if math.isfinite(t_hi) and t_hi / tau_s > limit:
        raise ValueError(f"{what} = {t_hi:g} s is {t_hi / tau_s:.0f} tau_s (tau_s = {tau_s:g}); the closed form "
                         f"uses exp(t / tau_s), which overflows {np.dtype(dtype).name} beyond {limit:g} tau_s. "
                         "Use float64, a larger tau_s, or rescale the time axis.")


GRID_TOL = 1e-4
# The constants the BATS kernels share with this module, passed to NVRTC as -D options by every
# launcher (snnkit.kernels.function): kernels/bats_common.cuh has no value of its own.
KERNEL_DEFINES = {"BATS_GRID_TOL": GRID_TOL}


def grid_up(t, dt):
    """Next grid point strictly after ``t`` (``+inf`` stays ``+inf``): ``(floor(t/dt) + 1) dt``.

    A time already on the grid moves a full step (t = 0 becomes dt), as in the study. Which times
    are "on the grid" must not depend on float rounding: a hidden layer's output k*dt reaches the
    next layer as k*dt*(1 +- eps), and a plain ``t + dt - fmod(t, dt)`` would then delay some of
    those spikes by one step and others not at all. So ``t/dt`` within ``GRID_TOL`` (1e-4 of a
    step, well above float32 rounding of t/dt) of an integer counts as on the grid — the same
    tolerance in float32 and float64, so both precisions put every spike on the same step — and
    the result is always computed as ``index * dt`` so that equal grid times are bit-identical."""
    xp = xp_of(t)
    tol = GRID_TOL
    with np.errstate(invalid="ignore"):
        fin = xp.isfinite(t)
        steps = xp.where(fin, t, 0) / dt
        nearest = xp.rint(steps)
        index = xp.where(xp.abs(steps - nearest) <= tol, nearest, xp.floor(steps)) + 1
        return xp.where(fin, (index * dt).astype(t.dtype), t)


def on_grid(grid, dt) -> bool:
    """Whether times on the grid ``grid`` (``SpikeTrains.grid``: set by a BATS layer on a grid, None
    for data) already lie on the grid ``dt``. Such times enter the next layer as they are; any other
    times (data, an encoder, another grid) move up to the grid first (:func:`grid_up`)."""
    return dt is not None and grid == dt


def potential(t, in_times, weights, out_times, tau_s, delta_theta):
    """Membrane potential u(t) of one neuron by superposition (for plots and independent checks).

    ``t`` [T] query times; ``in_times`` [K] and ``weights`` [K] its input spikes (+inf ignored);
    ``out_times`` its own spikes, each subtracting ``delta_theta exp(-(t - t_k)/tau)`` afterwards."""
    tau = 2.0 * tau_s
    t = np.asarray(t, dtype=np.float64)[:, None]
    ti = np.asarray(in_times, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    keep = np.isfinite(ti)
    ti, w = ti[keep], w[keep]
    s = np.maximum(t - ti[None, :], 0)
    u = (w * tau * np.where(t > ti, np.exp(-s / tau) - np.exp(-s / tau_s), 0)).sum(axis=1)
    to = np.asarray(out_times, dtype=np.float64).ravel()
    to = to[np.isfinite(to)]
    if to.size:
        so = np.maximum(t - to[None, :], 0)
        u -= (delta_theta * np.where(t > to, np.exp(-so / tau), 0)).sum(axis=1)
    return u
