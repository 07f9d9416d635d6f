"""Panels of the STBP + tdBN notebook. Each callback is a plain function returning a figure (the
notebook also calls it directly, headless); the panels only add sliders around it."""
from __future__ import annotations

import numpy as np

from functools import lru_cache

from ..stbp import LIFParameters, depth_profile
from ..stbp.plain import PlainStack, gradient_profile
from ..stbp.tdbn import normalize
from ..viz.stbp import depth_figure, gradient_depth_figure, preactivation_figure
from . import interactive_figure

NORM_LABELS = {"none": None, "plain BN": "bn", "tdBN": "tdbn"}


def depth_callback(depth=16, v_th=0.4, alpha=1.0, half_width=0.5, gain=1.0, weight_mean=0.0, width=96, n_steps=4,
                   batch=16, seed=0):
    """Rate and surrogate coverage by depth without normalization, with plain BN and with tdBN.
    ``weight_mean`` > 0 (excitatory on average) drives the unnormalized stack to saturation;
    ``half_width`` is the surrogate window's (STBP's a)."""
    neuron = LIFParameters(v_th=v_th, half_width=half_width)
    profiles = {label: depth_profile(depth, width, n_steps, batch, norm, neuron, alpha, gain=gain,
                                     weight_mean=weight_mean, seed=seed)
                for label, norm in NORM_LABELS.items()}
    return depth_figure(profiles, title=f"Firing rate by depth (Vth={v_th:g}, alpha={alpha:g}, a={half_width:g}, "
                                        f"weight gain={gain:g}, weight mean={weight_mean:g})")


def preactivation_samples(v_th=0.4, alpha=1.0, n=4096, channels=8, seed=0):
    """Pre-activations of a random layer fed with spikes: raw, after plain BN, after tdBN."""
    r = np.random.default_rng(seed)
    spikes = (r.random((2, n // 2, 64)) < 0.2).astype(np.float32)       # [T, B, N_in], rate 0.2
    w = r.uniform(-1 / 8, 1 / 8, (64, channels)).astype(np.float32)
    raw = spikes @ w
    return {"no normalization": raw, "plain BN": normalize(raw),
            "tdBN": normalize(raw, alpha * v_th)}


def preactivation_callback(v_th=0.4, alpha=1.0, half_width=0.5):
    return preactivation_figure(preactivation_samples(v_th, alpha), v_th, half_width)


@lru_cache(maxsize=1)
def _digits_batch(n=64):
    """The first ``n`` training digits (loaded once: a callback must stay fast)."""
    from ..datasets import load
    d = load("digits", "train")
    return d.x[:n], d.y[:n]


def gradient_profiles(depth=12, v_th=0.4, window=1.25, width=64, n_steps=2, batch=64, seed=0):
    """{label: gradient_profile} of a fresh deep plain stack (snnkit.stbp.plain.PlainStack) per
    normalization, on one batch of digits; the surrogate half-width is a = ``window`` x Vth."""
    x, y = _digits_batch(batch)
    neuron = LIFParameters(v_th=v_th, half_width=window * v_th)
    return {label: gradient_profile(PlainStack(x.shape[1], 10, depth=depth, width=width, n_steps=n_steps, norm=norm,
                                               neuron=neuron, seed=seed), x, y)
            for label, norm in NORM_LABELS.items()}


def gradient_callback(depth=12, v_th=0.4, window=1.25):
    """Weight-gradient norm and firing rate by depth of a deep plain stack at initialization, for no
    normalization, plain BN and tdBN (one real STBP forward and backward each)."""
    return gradient_depth_figure(gradient_profiles(depth, v_th, window),
                                 title=f"Deep plain stack at initialization (depth {depth}, Vth={v_th:g}, "
                                       f"a={window:g} Vth)")


def depth_controls():
    """The depth panel's sliders, keyed by the callback's argument names."""
    import ipywidgets as w
    return dict(depth=w.IntSlider(16, 2, 40, description="depth"),
                v_th=w.FloatSlider(0.4, min=0.05, max=2.0, step=0.05, description="Vth"),
                alpha=w.FloatSlider(1.0, min=0.25, max=2.0, step=0.05, description="alpha"),
                half_width=w.FloatSlider(0.5, min=0.05, max=1.5, step=0.05, description="half-width a"),
                gain=w.FloatSlider(1.0, min=0.25, max=4.0, step=0.25, description="weight gain"),
                weight_mean=w.FloatSlider(0.0, min=-1.0, max=3.0, step=0.25, description="weight mean"))


def preactivation_controls():
    import ipywidgets as w
    return dict(v_th=w.FloatSlider(0.4, min=0.05, max=2.0, step=0.05, description="Vth"),
                alpha=w.FloatSlider(1.0, min=0.25, max=2.0, step=0.05, description="alpha"),
                half_width=w.FloatSlider(0.5, min=0.05, max=1.5, step=0.05, description="half-width a"))


def gradient_controls():
    import ipywidgets as w
    return dict(depth=w.IntSlider(12, 2, 24, description="depth"),
                v_th=w.FloatSlider(0.4, min=0.05, max=2.0, step=0.05, description="Vth"),
                window=w.FloatSlider(1.25, min=0.25, max=2.5, step=0.25, description="a / Vth"))


def depth_panel():
    return interactive_figure(depth_callback, **depth_controls())


def preactivation_panel():
    return interactive_figure(preactivation_callback, **preactivation_controls())


def gradient_panel():
    return interactive_figure(gradient_callback, **gradient_controls())


# {panel: (callback, its controls)}: what a test sweeps slider by slider
PANELS = {"depth_panel": (depth_callback, depth_controls),
          "preactivation_panel": (preactivation_callback, preactivation_controls),
          "gradient_panel": (gradient_callback, gradient_controls)}
