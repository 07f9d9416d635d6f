"""BATS layers (the protocol of DESIGN.md) and a network container.

``LIFDense(n_in, n_out, tau_s, theta, delta_theta=None, max_spikes=1, t_max=inf, dt=None)``
    forward(SpikeTrains [B, n_in, S_in]) -> SpikeTrains [B, n_out, max_spikes]
    backward(dL/dt_out [B, n_out, max_spikes]) -> dL/dt_in [B, n_in, S_in] (None when the layer
    is the first of a network: the input times are data, nothing upstream needs their error)
    params["weight"] [n_out, n_in], grads["weight"]; ``last`` is the latest ``Simulation`` (continuous
    times, x, overflow) for plots and the discretization study.
``SpikeInput(n_in, dtype)``: checks the encoded input (on the host when it is NumPy) and moves it to
the backend (no parameters). ``mark_checked(spikes)`` declares trains already validated.
``Network(layers)``: a Sequential that tells its first layer to skip the input error.
``latency_encoder(t_max)``: a Trainer ``encode`` that maps features in [0, 1] to one spike at
``t_max (1 - x)`` (0 stays silent).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp, xp_of
from ..datasets.encoders import LatencyEncoder
from ..nn.init import uniform
from ..nn.sequential import Sequential
from ..spikes import SpikeTrains
from .backward import backward as _backward
from .neuron import check_exp_range, check_neuron, check_times
from .simulate import simulate

__all__ = ["LIFDense", "SpikeInput", "Network", "latency_encoder", "mark_checked"]


def mark_checked(spikes: SpikeTrains) -> SpikeTrains:
    """Declare ``spikes`` valid (no NaN / -inf, slots sorted), so that ``LIFDense`` skips the value
    check, a device sync. For data checked once up front, e.g. a data set validated on the host with
    ``neuron.check_times`` before its upload. Returns ``spikes``."""
    spikes._bats_checked = True
    return spikes


def _is_checked(spikes) -> bool:
    return getattr(spikes, "_bats_checked", False)


class LIFDense:
    def __init__(self, n_in, n_out, tau_s, theta, delta_theta=None, max_spikes=1, t_max=float("inf"),
                 dt=None, init=(-1.0, 1.0), seed=None, dtype=np.float32, weight=None):
        (self.tau_s, self.theta, self.delta_theta, self.max_spikes, self.t_max,
         self.dt) = check_neuron(tau_s, theta, delta_theta, max_spikes, t_max, dt)
        if int(n_in) < 1 or int(n_out) < 1:
            raise ValueError(f"n_in and n_out must be >= 1; got n_in={n_in}, n_out={n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        if weight is None:
            weight = uniform((self.n_out, self.n_in), init[0], init[1], seed=seed, dtype=dtype)
        else:
            weight = get_xp().asarray(weight, dtype=dtype)
            if weight.shape != (self.n_out, self.n_in):
                raise ValueError(f"weight must have shape ({self.n_out}, {self.n_in}) = (n_out, n_in); "
                                 f"got {tuple(weight.shape)}")
        check_exp_range(None, self.tau_s, weight.dtype, t_max=self.t_max)
        self.params = {"weight": weight}
        self.grads = {"weight": xp_of(weight).zeros_like(weight)}
        self.need_input_grad = True
        self.last = None

    def forward(self, spikes) -> SpikeTrains:
        w = self.params["weight"]
        # Trains made by a BATS layer (or SpikeInput, or marked by ``mark_checked``) are valid by
        # construction: skipping their value check saves a device sync per layer.
        times = check_times(spikes, self.n_in, "input spikes", values=not _is_checked(spikes))
        if not _is_checked(spikes):
            check_exp_range(times, self.tau_s, w.dtype, "input spikes", self.t_max)
        self.last = simulate(w, xp_of(w).asarray(times, dtype=w.dtype), self.tau_s, self.theta,
                             self.delta_theta, self.max_spikes, self.t_max, self.dt, check=False)
        return mark_checked(self.last.spikes)

    __call__ = forward

    def backward(self, grad_times):
        if self.last is None:
            raise RuntimeError("LIFDense.backward called before forward")
        w = self.params["weight"]
        dw, dx = _backward(w, self.last, grad_times, self.tau_s, self.theta, self.delta_theta,
                           need_input_grad=self.need_input_grad)
        self.grads["weight"] = dw
        return dx

    def __repr__(self):
        dt = "" if self.dt is None else f", dt={self.dt:g}"
        return (f"LIFDense({self.n_in} -> {self.n_out}, tau_s={self.tau_s:g}, theta={self.theta:g}, "
                f"delta_theta={self.delta_theta:g}, max_spikes={self.max_spikes}, t_max={self.t_max:g}{dt})")


class SpikeInput:
    """First layer: validates the input trains and puts them on the backend in ``dtype``."""

    def __init__(self, n_in, dtype=np.float32):
        self.n_in, self.dtype = int(n_in), dtype
        self.params, self.grads = {}, {}

    def forward(self, spikes) -> SpikeTrains:
        if not isinstance(spikes, SpikeTrains):
            raise ValueError(f"SpikeInput expects SpikeTrains (e.g. snnkit.datasets.latency(x)); "
                             f"got {type(spikes).__name__}")
        xp = get_xp()
        # Validate where the data lives: host (NumPy) trains are checked before the upload, which
        # costs no device sync; the layers after this one then trust the trains.
        t = check_times(spikes.times, self.n_in, "input spikes", values=not _is_checked(spikes))
        t = xp.asarray(t, dtype=self.dtype)
        counts = xp.asarray(spikes.counts, dtype=xp.int32)
        over = None if spikes.overflow is None else xp.asarray(spikes.overflow, dtype=xp.int32)
        return mark_checked(SpikeTrains(t, counts, over))

    __call__ = forward

    def backward(self, grad):
        return grad

    def __repr__(self):
        return f"SpikeInput({self.n_in})"


class Network(Sequential):
    """Layers in order; the first BATS layer skips computing the (unused) error of the input."""

    def __init__(self, *layers):
        super().__init__(*layers)
        first = next((l for l in self.layers if isinstance(l, LIFDense) or hasattr(l, "need_input_grad")), None)
        if first is not None:
            first.need_input_grad = False

    def spike_counts(self):
        """Mean spikes per neuron and per sample of each layer's latest forward (a sparsity readout)."""
        out = []
        for l in self.layers:
            sim = getattr(l, "last", None)
            if sim is not None:
                out.append(float(xp_of(sim.counts).asarray(sim.counts).mean()))
        return out


class _BatsLatency(LatencyEncoder):
    def on_device(self, x_dev, rng=None):
        # the data set was checked once by ``prepare``: the first layer need not check each batch
        return mark_checked(super().on_device(x_dev, rng))


def latency_encoder(t_max=0.1, dtype=np.float32):
    """``encode(x_batch, rng) -> SpikeTrains`` for the Trainer: one spike at ``t_max (1 - x)``.
    On the GPU the Trainer uploads the data set once and encodes each batch there
    (:class:`snnkit.datasets.encoders.LatencyEncoder`)."""
    return _BatsLatency(t_max, dtype)
