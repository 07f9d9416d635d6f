r"""Why deep SNNs go silent or saturate: firing rate, pre-activation scale and surrogate coverage
layer by layer in a deep stack of ``Linear -> norm -> LIF`` on random analog input.

Without normalization the pre-activation scale of layer l+1 is set by the firing rate of layer l
times the weights: a rate a little too low shrinks the next layer's input, which fires even less
(the network goes silent); a little too high and it climbs to every neuron firing at every step.
With zero-mean weights half of each layer's inputs are inhibitory, so the rate tops out near 0.5
whatever the gain; a positive weight mean (excitatory on average) closes a positive feedback loop:
more spikes below -> more drive -> more spikes, until nearly every neuron fires at every step.
A saturated neuron sits far above Vth, outside the surrogate window h(u) = 1[|u - Vth| < a] / (2 a),
so no gradient flows. A silent layer passes no gradient to its weights either (dL/dW = delta o_prev^T
and o_prev = 0), even where u = 0 lies inside the window (a > Vth, as in the defaults; a = half_width).
tdBN rescales every layer's input to N(0, (alpha Vth)^2): the rate stays put with depth, and the
share of membrane potentials inside the surrogate window depends only on a / (alpha Vth).
"""
from __future__ import annotations

import numpy as np

from .lif import STBP, _as_parameters, lif_forward_reference
from .tdbn import normalize


def depth_profile(depth=12, width=128, n_steps=4, batch=32, norm="tdbn", neuron=STBP, alpha=1.0, gain=1.0,
                  weight_mean=0.0, seed=0):
    """Per layer: firing rate (spikes per neuron per step), pre-activation std, and the share of
    membrane potentials inside the surrogate window.

    Weights are ``U(-gain / sqrt(width), gain / sqrt(width)) + weight_mean / width``: ``gain`` scales
    PyTorch's default Linear init (too low and the stack goes silent), ``weight_mean`` is the mean
    drive a neuron receives per unit of firing rate below (x ~ weight_mean * rate + noise; well
    above Vth, e.g. 2 with the defaults, the stack climbs to rate 1). The default 0 gives zero-mean
    weights. Normalization
    removes the mean per channel, but a large ``weight_mean`` also gives every neuron the same
    sample-to-sample drive (correlated activity), which per-channel statistics cannot undo: the
    share of u inside the window then falls with depth even with tdBN.
    ``neuron`` (:class:`snnkit.stbp.LIFParameters`) sets the threshold, decay and surrogate window.
    NumPy, float32; a few ms for the defaults."""
    neuron = _as_parameters(neuron)
    v_th, a = neuron.v_th, neuron.half_width
    if int(depth) < 1 or int(width) < 1:
        raise ValueError(f"depth and width must be >= 1, got {depth}, {width}")
    r = np.random.default_rng(seed)
    h = np.broadcast_to(r.random((batch, width), dtype=np.float32), (n_steps, batch, width))
    rate, std, window = [], [], []
    for _ in range(int(depth)):
        bound = gain / np.sqrt(width)                 # gain x PyTorch's default Linear init
        w = (r.uniform(-bound, bound, (width, width)) + weight_mean / width).astype(np.float32)
        x = h @ w.T
        if norm == "tdbn":
            x = normalize(x, alpha * v_th)      # NumPy whatever the backend: this probe is a few ms
        elif norm == "bn":
            x = normalize(x)
        elif norm is not None:
            raise ValueError(f"norm must be 'tdbn', 'bn' or None, got {norm!r}")
        h, u = lif_forward_reference(x, neuron, return_u=True)
        rate.append(float(h.mean()))
        std.append(float(x.std()))
        window.append(float((np.abs(u - v_th) < a).mean()))
    return {"layer": np.arange(1, int(depth) + 1), "rate": np.array(rate), "preact_std": np.array(std),
            "in_window": np.array(window)}


def silent_depth(max_depth=40, **kw):
    """The first layer (1-based) at which :func:`depth_profile` finds no spike at all, or None if
    every layer up to ``max_depth`` still fires. ``kw`` goes to depth_profile (norm, gain,
    weight_mean, v_th, ...). Without a bias a silent layer feeds the next one zeros, so silence,
    once reached, lasts to the top of the stack."""
    rate = depth_profile(depth=max_depth, **kw)["rate"]
    silent = np.flatnonzero(rate == 0)
    return int(silent[0]) + 1 if silent.size else None
