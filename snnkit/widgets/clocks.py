"""Panels of notebook 01 (one LIF, three clocks). The callbacks are plain functions returning a
plotly figure; the notebook calls them directly too, the panels only add sliders."""
from __future__ import annotations

import numpy as np

from .. import neurons
from ..viz.clocks import clocks_figure, surrogate_figure
from . import interactive_figure

__all__ = ["T_IN", "W", "clocks_callback", "clocks_panel", "surrogate_callback", "surrogate_panel"]

T_IN = (0.01, 0.04, 0.09)      # s: the common input of the notebook (three spikes, the last inhibitory)
W = (1.5, 1.2, -1.0)
T_END = 0.2


def clocks_callback(dt_ms=1.0, drive=1.0, tau_s_ms=30.0, theta=0.01, t_in=T_IN, w=W):
    """The three neurons driven by the input spikes ``t_in`` with weights ``drive * w``
    (:func:`snnkit.neurons.three_clocks`), step ``dt_ms``, synaptic time constant ``tau_s_ms``."""
    w = np.asarray(w, dtype=float) * float(drive)
    r = neurons.three_clocks(t_in, w, tau_s=tau_s_ms * 1e-3, theta=theta, dt=dt_ms * 1e-3, t_end=T_END)
    title = (f"dt = {dt_ms:g} ms, beta = exp(-dt/tau) = {r.beta:.4f}; spikes: BATS {len(r.spikes_bats)}, "
             f"S3GD {len(r.spikes_s3gd)}, STBP {len(r.spikes_stbp)}")
    return clocks_figure(r, t_in, np.round(w, 3), title=title)


def clocks_panel(dt_ms=1.0, drive=1.0, tau_s_ms=30.0):
    import ipywidgets as W_
    return interactive_figure(
        clocks_callback,
        dt_ms=W_.FloatSlider(dt_ms, min=0.5, max=10.0, step=0.5, description="dt (ms)"),
        drive=W_.FloatSlider(drive, min=0.2, max=3.0, step=0.2, description="drive x w"),
        tau_s_ms=W_.FloatSlider(tau_s_ms, min=10.0, max=60.0, step=10.0, description="tau_s (ms)"))


U_GRID = np.linspace(0.0, 3.0, 1201)
PEAKS = np.linspace(0.3, 3.0, 271)


def surrogate_callback(scale=100.0, half_width=0.5, tau_s=0.03, theta=0.01):
    """Surrogates of S3GD and STBP (:func:`snnkit.neurons.surrogates`) above BATS's exact
    gradient (:func:`snnkit.neurons.exact_gradient_curve`)."""
    curves = neurons.surrogates(U_GRID, scale=scale, half_width=half_width)
    _, _, dtdw = neurons.exact_gradient_curve(PEAKS, tau_s, theta)
    return surrogate_figure(U_GRID, curves, PEAKS, dtdw, scale, half_width)


def surrogate_panel(scale=100.0, half_width=0.5):
    import ipywidgets as W_
    return interactive_figure(
        surrogate_callback,
        scale=W_.FloatLogSlider(scale, base=10, min=0, max=3, step=0.25, description="S3GD scale"),
        half_width=W_.FloatSlider(half_width, min=0.05, max=1.0, step=0.05, description="STBP a"))
