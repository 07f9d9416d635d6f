"""Figures of the STBP + tdBN notebook: firing rate by depth, pre-activation distributions against
the threshold and the surrogate window, and firing rates per layer (and per time step)."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .core import _COLORS, _go


def depth_figure(profiles: dict, title="Firing rate by depth", height=340):
    """``profiles``: {label: snnkit.stbp.depth_profile(...)} -> rate and surrogate coverage by layer."""
    go = _go()
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=("spikes per neuron per step",
                                                        "share of u inside the surrogate window"))
    for i, (name, p) in enumerate(profiles.items()):
        c = _COLORS[i % len(_COLORS)]
        fig.add_trace(go.Scatter(x=p["layer"], y=p["rate"], mode="lines+markers", name=name,
                                 legendgroup=name, line=dict(color=c)), row=1, col=1)
        fig.add_trace(go.Scatter(x=p["layer"], y=p["in_window"], mode="lines+markers", name=name,
                                 legendgroup=name, showlegend=False, line=dict(color=c, dash="dot")), row=1, col=2)
    fig.update_xaxes(title_text="layer (depth)")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=70, b=40))
    return fig


def preactivation_figure(samples: dict, v_th, aa, title="Pre-activations against threshold and surrogate window",
                         height=340, bins=80):
    """Histograms of pre-activation samples ({label: array}); the threshold Vth as a line and the
    window |u - Vth| < aa, where the rectangular surrogate passes gradient, shaded."""
    go = _go()
    fig = go.Figure()
    for i, (name, v) in enumerate(samples.items()):
        v = to_numpy(v).ravel()
        fig.add_trace(go.Histogram(x=v, name=name, nbinsx=bins, histnorm="probability density", opacity=0.6,
                                   marker_color=_COLORS[i % len(_COLORS)]))
    fig.add_vrect(x0=v_th - aa, x1=v_th + aa, fillcolor="orange", opacity=0.15, line_width=0,
                  annotation_text="surrogate window", annotation_position="top left")
    fig.add_vline(x=v_th, line_dash="dash", line_color="black", annotation_text="Vth")
    fig.update_layout(title=title, barmode="overlay", height=height, xaxis_title="pre-activation x[t]",
                      yaxis_title="density", margin=dict(l=50, r=20, t=60, b=40))
    return fig


def firing_rate_bars(rates: dict, title="Firing rate per layer (spikes per neuron per time step)", height=360):
    """Grouped bars: ``rates`` is {model label: {layer name: rate}} (SpikingResNet.firing_rates())."""
    go = _go()
    fig = go.Figure()
    for i, (name, r) in enumerate(rates.items()):
        fig.add_trace(go.Bar(x=list(r), y=[float(v) for v in r.values()], name=name,
                             marker_color=_COLORS[i % len(_COLORS)]))
    fig.update_layout(title=title, barmode="group", height=height, yaxis_title="rate",
                      xaxis_title="LIF layer (input -> output)", margin=dict(l=50, r=20, t=60, b=90))
    return fig


def firing_rate_by_step(per_step: dict, title="Firing rate per layer and time step", height=320):
    """Heatmap of {layer name: rate per step [T]} (SpikingResNet.firing_rates(per_step=True))."""
    go = _go()
    names = list(per_step)
    z = np.array([to_numpy(per_step[n]) for n in names])
    fig = go.Figure(go.Heatmap(z=z, x=[f"t = {t}" for t in range(z.shape[1])], y=names, colorscale="Viridis",
                               colorbar=dict(title="rate"), zmin=0))
    fig.update_layout(title=title, height=height, margin=dict(l=110, r=20, t=60, b=40))
    return fig
