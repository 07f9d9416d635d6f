"""BATS layers (the layer protocol of ``snnkit.nn.protocol``, docs/design.md) and a network container.

``LIFDense(n_in, n_out, neuron)`` with ``neuron = LIFParameters(tau_s, theta, delta_theta=None,
max_spikes=1, t_max=inf, dt=None)``
    forward(SpikeTrains [B, n_in, S_in]) -> SpikeTrains [B, n_out, max_spikes]
    backward(dL/dt_out [B, n_out, max_spikes], need_input_grad=True) -> dL/dt_in [B, n_in, S_in]
    (None with need_input_grad=False: the first layer of a network, whose input times are data)
    params["weight"] [n_out, n_in], grads["weight"]; ``last`` is the latest ``Simulation`` (continuous
    times, x, overflow) for plots and the discretization study.
``SpikeInput(n_in, dtype)``: checks the encoded input (on the host when it is NumPy) and moves it to
the backend (no parameters). ``mark_checked(spikes)`` declares trains already validated.
``Network(layers)``: a Sequential whose backward skips the input error by default (its input is data).
``latency_encoder(t_max)``: a Trainer ``encode`` that maps features in [0, 1] to one spike at
``t_max (1 - x)`` (0 stays silent).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import get_xp, xp_of
from ..datasets.encoders import LatencyEncoder
from ..nn.init import uniform
from ..nn.protocol import require_forward
from ..nn.sequential import Sequential
from ..spikes import SpikeTrains
from .backward import backward as _backward
from .neuron import NeuronLayer, as_parameters, check_exp_range, on_grid
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


def _enter(spikes, n_in, layer, map_shape=None):
    """Where trains enter a layer: the times array, after checking the SpikeTrains invariant
    (counts == finite slots, no NaN or negative times, sorted; see ``snnkit.spikes``) for trains
    that no BATS layer produced, and the feature-map layout where the trains say which map they hold."""
    if isinstance(spikes, SpikeTrains):
        if not _is_checked(spikes):
            spikes.validate("input spikes")
        if map_shape is not None and spikes.map_shape is not None:
            got = tuple(int(v) for v in spikes.map_shape)
            if got != tuple(map_shape):
                hint = ""
                if sorted(got) == sorted(map_shape) and got[0] == map_shape[2]:
                    hint = (" They look channels-first: images must be channels-last [B, H, W, C] before the "
                            "encoder (x.transpose(0, 2, 3, 1)).")
                raise ValueError(f"{layer}: the input spikes hold a {got} (height, width, channels) map, the layer "
                                 f"was built for input_shape {tuple(map_shape)}.{hint}")
        return spikes.times
    if getattr(spikes, "ndim", None) is None:
        raise TypeError(f"{layer} takes SpikeTrains (e.g. snnkit.datasets.latency(x)) or a times array "
                        f"[batch, {n_in}, slots]; got {type(spikes).__name__}")
    return spikes


class LIFDense(NeuronLayer):
    """A dense layer of BATS neurons (the module docstring); ``neuron`` is a :class:`LIFParameters`."""

    def __init__(self, n_in, n_out, neuron, init=(-1.0, 1.0), seed=None, dtype=np.float32, weight=None):
        self.neuron = as_parameters(neuron)
        self.n_in = checks.integer("n_in", n_in, 1)
        self.n_out = checks.integer("n_out", n_out, 1)
        dtype = checks.float_dtype("dtype", dtype)
        if weight is None:
            lo, hi = _check_init(init)
            weight = uniform((self.n_out, self.n_in), lo, hi, seed=seed, dtype=dtype)
        else:
            weight = get_xp().asarray(checks.real_array("weight", weight), dtype=dtype)
            if weight.shape != (self.n_out, self.n_in):
                raise ValueError(f"weight must have shape ({self.n_out}, {self.n_in}) = (n_out, n_in); "
                                 f"got {tuple(weight.shape)}")
            if not checks.all_finite(weight):
                raise ValueError("weight contains NaN or Inf; a neuron with such a weight never fires.")
        check_exp_range(None, self.tau_s, weight.dtype, t_max=self.t_max)
        checks.allocation(self.n_out * self.max_spikes * weight.dtype.itemsize * 3,
                          f"one sample's output of LIFDense ({self.n_out} neurons x max_spikes={self.max_spikes})",
                          "Lower max_spikes (extra spikes are counted in overflow, not stored).")
        self.params = {"weight": weight}
        self.grads = {"weight": xp_of(weight).zeros_like(weight)}
        self.last = None

    def forward(self, spikes) -> SpikeTrains:
        w, n = self.params["weight"], self.neuron
        times = _enter(spikes, self.n_in, "LIFDense")
        # Trains made by a BATS layer (or SpikeInput, or marked by ``mark_checked``) are valid by
        # construction: skipping their value check saves a device sync per layer.
        self.last = simulate(w, xp_of(w).asarray(times, dtype=w.dtype), n.tau_s, n.theta, n.delta_theta,
                             n.max_spikes, n.t_max, n.dt, check=not _is_checked(spikes), name="input spikes",
                             on_grid=on_grid(spikes.grid, n.dt))
        out = self.last.spikes
        out.grid = n.dt                      # the next layer on this grid takes these times as they are
        return mark_checked(out)

    __call__ = forward

    def backward(self, grad_times, need_input_grad=True):
        require_forward(self, self.last)
        n = self.neuron
        dw, dx = _backward(self.params["weight"], self.last, grad_times, n.tau_s, n.theta, n.delta_theta,
                           need_input_grad=need_input_grad)
        self.grads["weight"][...] = dw
        return dx

    def __repr__(self):
        dt = "" if self.dt is None else f", dt={self.dt:g}"
        return (f"LIFDense({self.n_in} -> {self.n_out}, tau_s={self.tau_s:g}, theta={self.theta:g}, "
                f"delta_theta={self.delta_theta:g}, max_spikes={self.max_spikes}, t_max={self.t_max:g}{dt})")


def _check_init(init):
    """``init = (low, high)`` of the uniform initial weights: finite, low < high."""
    try:
        lo, hi = init
    except (TypeError, ValueError):
        raise TypeError(f"init must be a pair (low, high) of the uniform initial weights; got {init!r}") from None
    lo, hi = checks.number("init[0] (low)", lo), checks.number("init[1] (high)", hi)
    if not lo < hi:
        raise ValueError(f"init = {init!r}: low must be < high (the range of the uniform initial weights)")
    return lo, hi


class SpikeInput:
    """First layer: validates the input trains and puts them on the backend in ``dtype``."""

    def __init__(self, n_in, dtype=np.float32):
        self.n_in, self.dtype = checks.integer("n_in", n_in, 1), checks.float_dtype("dtype", dtype)
        self.params, self.grads = {}, {}
        self._shape = None

    def forward(self, spikes) -> SpikeTrains:
        if not isinstance(spikes, SpikeTrains):
            raise TypeError(f"SpikeInput expects SpikeTrains (e.g. snnkit.datasets.latency(x)); "
                            f"got {type(spikes).__name__}")
        xp = get_xp()
        # Validate where the data lives: host (NumPy) trains are checked before the upload, which
        # costs no device sync; the layers after this one then trust the trains.
        t = _enter(spikes, self.n_in, "SpikeInput")
        if t.ndim != 3 or t.shape[1] != self.n_in:
            raise ValueError(f"SpikeInput({self.n_in}): input spikes must be [batch, {self.n_in}, slots]; got "
                             f"shape {tuple(t.shape)}")
        if t.shape[0] < 1 or t.shape[2] < 1:
            raise ValueError(f"SpikeInput: the input spikes have shape {tuple(t.shape)}: an empty batch or no "
                             "slots; pass at least one sample with one slot")
        t = xp.asarray(t, dtype=self.dtype)
        self._shape = t.shape
        counts = xp.asarray(spikes.counts, dtype=xp.int32)
        over = None if spikes.overflow is None else xp.asarray(spikes.overflow, dtype=xp.int32)
        return mark_checked(SpikeTrains(t, counts, over, spikes.map_shape, spikes.grid))

    __call__ = forward

    def backward(self, grad, need_input_grad=True):
        require_forward(self, self._shape)
        return grad if need_input_grad else None

    def __repr__(self):
        return f"SpikeInput({self.n_in})"


class Network(Sequential):
    """Layers in order. ``backward(grad)`` skips the error of the input by default (a model's input
    is data): the first BATS layer computes no dL/dt_in."""

    def backward(self, grad, need_input_grad=False):
        return super().backward(grad, need_input_grad)

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
