"""Panels of the STBP + tdBN notebook. Each callback is a plain function returning a figure (the
notebook also calls it directly, headless); the panels only add sliders around it."""
from __future__ import annotations

import numpy as np

from ..stbp import depth_profile
from ..stbp.tdbn import normalize
from ..viz.stbp import depth_figure, preactivation_figure
from . import interactive_figure

NORM_LABELS = {"none": None, "plain BN": "bn", "tdBN": "tdbn"}


def depth_callback(depth=16, v_th=0.4, alpha=1.0, aa=0.5, gain=1.0, weight_mean=0.0, width=96, n_steps=4, batch=16,
                   seed=0):
    """Rate and surrogate coverage by depth without normalization, with plain BN and with tdBN.
    ``weight_mean`` > 0 (excitatory on average) drives the unnormalized stack to saturation."""
    profiles = {label: depth_profile(depth, width, n_steps, batch, norm, v_th, alpha, aa, gain=gain,
                                     weight_mean=weight_mean, seed=seed)
                for label, norm in NORM_LABELS.items()}
    return depth_figure(profiles, title=f"Firing rate by depth (Vth={v_th:g}, alpha={alpha:g}, aa={aa:g}, "
                                        f"weight gain={gain:g}, weight mean={weight_mean:g})")


def preactivation_samples(v_th=0.4, alpha=1.0, n=4096, channels=8, seed=0):
    """Pre-activations of a random layer fed with spikes: raw, after plain BN, after tdBN."""
    r = np.random.default_rng(seed)
    spikes = (r.random((2, n // 2, 64)) < 0.2).astype(np.float32)       # [T, B, N_in], rate 0.2
    w = r.uniform(-1 / 8, 1 / 8, (64, channels)).astype(np.float32)
    raw = spikes @ w
    return {"no normalization": raw, "plain BN": normalize(raw),
            "tdBN": normalize(raw, alpha * v_th)}


def preactivation_callback(v_th=0.4, alpha=1.0, aa=0.5):
    return preactivation_figure(preactivation_samples(v_th, alpha), v_th, aa)


def depth_panel():
    import ipywidgets as w
    return interactive_figure(
        depth_callback,
        depth=w.IntSlider(16, 2, 40, description="depth"),
        v_th=w.FloatSlider(0.4, min=0.05, max=2.0, step=0.05, description="Vth"),
        alpha=w.FloatSlider(1.0, min=0.25, max=2.0, step=0.05, description="alpha"),
        aa=w.FloatSlider(0.5, min=0.05, max=1.5, step=0.05, description="aa"),
        gain=w.FloatSlider(1.0, min=0.25, max=4.0, step=0.25, description="weight gain"),
        weight_mean=w.FloatSlider(0.0, min=-1.0, max=3.0, step=0.25, description="weight mean"))


def preactivation_panel():
    import ipywidgets as w
    return interactive_figure(
        preactivation_callback,
        v_th=w.FloatSlider(0.4, min=0.05, max=2.0, step=0.05, description="Vth"),
        alpha=w.FloatSlider(1.0, min=0.25, max=2.0, step=0.05, description="alpha"),
        aa=w.FloatSlider(0.5, min=0.05, max=1.5, step=0.05, description="aa"))
