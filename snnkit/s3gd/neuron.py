r"""The S3GD neuron: its parameters (one frozen object) and the formulas every path shares.

Each formula here is written once in NumPy; its CUDA twin is one ``__device__`` function in
``kernels/s3gd_common.cuh`` (named beside it). The dense and the sparse backward, on NumPy and
on the GPU, all call these two, so changing the surrogate is a change of two functions:
:func:`fast_sigmoid_grad` and ``s3gd_fast_sigmoid_grad``.

    sigma'(V - theta) = 1 / (scale |V - theta| + 1)^2           fast-sigmoid surrogate of dS/dV
    A = {(b, t, j) : |V[b,t,j] - theta| < delta}                 active band (sparse backward)

Parameters (Perez-Nieves & Goodman, NeurIPS 2021; the defaults are theirs):

* ``beta = exp(-dt / tau_mem)``, the membrane's decay per step; dt = 1 ms, tau_mem = 10 ms gives
  :data:`BETA` = exp(-1/10) = 0.9048 (the same default for the hidden layers and the readout).
* ``threshold`` theta = 1 (potentials are in units of the threshold).
* ``delta``: half-width of the active band (the paper's code stores b_th = theta - delta).
* ``surrogate_scale``: the fast sigmoid's steepness (100: the paper's value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .. import checks
from ..backend import xp_of

BETA = math.exp(-1 / 10)
"""exp(-dt / tau_mem) with dt = 1 ms, tau_mem = 10 ms: the paper's membrane (and readout) decay."""

INIT_GAIN = 7.0
"""Weights start as N(mean, (INIT_GAIN (1 - beta))^2 / n_in): the initialisation of the paper's
code (after Zenke's SpyTorch tutorial). A neuron integrates about 1 / (1 - beta) steps of input,
so the (1 - beta) factor keeps the summed drive, and with it the initial firing, independent of
tau_mem; the gain 7 makes some neurons fire from the first step (a silent network has no
gradient)."""


def default_weight_scale(beta: float) -> float:
    """The standard deviation times sqrt(n_in) of the initial weights: ``INIT_GAIN (1 - beta)``."""
    return INIT_GAIN * (1.0 - beta)


@dataclass(frozen=True)
class LIFParameters:
    """The parameters of an S3GD LIF neuron, shared by :class:`~snnkit.s3gd.lif.LIFDense`, the
    functions of lif.py / sparse.py, the CUDA launchers (cuda.py) and the notebooks.

    Frozen: change one with ``dataclasses.replace(p, delta=0.1)`` (``p.replace(delta=0.1)``)."""
    beta: float = BETA
    threshold: float = 1.0
    delta: float = 0.2
    surrogate_scale: float = 100.0

    def __post_init__(self):
        # validated once here, so that every holder of a LIFParameters can rely on it
        object.__setattr__(self, "beta", checks.in_range("beta", self.beta, 0, 1, hi_open=True,
                                                         fix="beta = exp(-dt/tau_mem)."))
        object.__setattr__(self, "threshold", checks.positive(
            "threshold", self.threshold, "The spike threshold must be a positive, finite number."))
        object.__setattr__(self, "delta", checks.positive(
            "delta", self.delta, "It is the half-width of the active band |V - threshold| < delta."))
        object.__setattr__(self, "surrogate_scale", checks.positive("surrogate_scale", self.surrogate_scale))

    def replace(self, **changes) -> "LIFParameters":
        return replace(self, **changes)


def fast_sigmoid_grad(v, threshold=1.0, scale=100.0):
    """sigma'(V - theta) = 1 / (scale |V - theta| + 1)^2.
    Twin: kernels/s3gd_common.cuh::s3gd_fast_sigmoid_grad"""
    xp = xp_of(v)
    den = scale * xp.abs(v - threshold) + 1
    return 1 / (den * den)


def in_band(v, threshold, delta):
    """The active band: |V - theta| < delta (a boolean array).
    Twin: kernels/s3gd_common.cuh::s3gd_in_band"""
    return xp_of(v).abs(v - threshold) < delta
