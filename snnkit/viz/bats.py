"""Figures of the BATS notebooks (plotly imported lazily)."""
from __future__ import annotations

import numpy as np

from .core import membrane_trace

__all__ = ["neuron_figure", "spike_time_curve", "convergence_heatmaps", "message_figure"]


def neuron_figure(t, u, theta, spikes, stored=None, brian=None, title="One BATS neuron", height=360,
                  brian_dt=None, inputs=None):
    """Membrane potential from the closed form, its spikes (stars; the stored ones filled), and
    optionally Brian2's trace ``brian=(t, u)`` on top (dashed), run with time step ``brian_dt``.
    ``inputs=(t_in, w)`` marks the input spikes with their weights. The potential has no physical
    unit (a.u.: the weights are jumps of the current, in a.u./s), so the axis says so."""
    import plotly.graph_objects as go
    from .clocks import mark_inputs
    fig = membrane_trace(t, u, threshold=theta, spike_times=None, title=title, names=["closed form u(t)"],
                         height=height)
    fig.update_yaxes(title_text=f"potential u (a.u.; threshold θ = {theta:g})")
    if inputs is not None:
        mark_inputs(fig, *inputs)
    spikes = np.asarray(spikes, dtype=float)
    stored = len(spikes) if stored is None else int(stored)
    fig.add_trace(go.Scatter(x=spikes[:stored], y=[theta] * stored, mode="markers", name="spikes (stored)",
                             marker=dict(symbol="star", size=12, color="black")))
    if stored < len(spikes):
        fig.add_trace(go.Scatter(x=spikes[stored:], y=[theta] * (len(spikes) - stored), mode="markers",
                                 name="spikes past max_spikes (overflow)",
                                 marker=dict(symbol="star-open", size=12, color="gray")))
    if brian is not None:
        label = "Brian2" if not brian_dt else f"Brian2 (dt = {brian_dt * 1e6:g} us)"
        fig.add_trace(go.Scatter(x=brian[0], y=brian[1], mode="lines", name=label,
                                 line=dict(dash="dash", color="orange")))
    return fig


def message_figure(text, title="", height=340):
    """An empty figure that says ``text`` (a panel whose settings have nothing to draw)."""
    import plotly.graph_objects as go
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=15))
    fig.update_layout(title=title, height=height, xaxis_visible=False, yaxis_visible=False,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def spike_time_curve(w_values, t_values, w0, t0, slope, fd_slope=None, title="Spike time against one weight",
                     height=340):
    """A spike time as a function of one weight, with the exact gradient as a tangent at ``w0``
    (and the finite-difference slope, if given)."""
    import plotly.graph_objects as go
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=w_values, y=t_values, mode="lines", name="t_k(w) (simulated)"))
    span = (np.max(w_values) - np.min(w_values)) / 4
    ws = np.array([w0 - span, w0 + span])
    fig.add_trace(go.Scatter(x=ws, y=t0 + slope * (ws - w0), mode="lines", name=f"exact gradient {slope:.4g}",
                             line=dict(dash="dash")))
    if fd_slope is not None:
        fig.add_trace(go.Scatter(x=ws, y=t0 + fd_slope * (ws - w0), mode="lines",
                                 name=f"finite difference {fd_slope:.4g}", line=dict(dash="dot")))
    fig.add_trace(go.Scatter(x=[w0], y=[t0], mode="markers", name="current weight", marker=dict(size=10)))
    fig.update_layout(title=title, xaxis_title="weight (a.u.)", yaxis_title="spike time (s)", height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def convergence_heatmaps(means, stds, rates: dict, height=360):
    """Convergence rate over the (initial weight mean, std) grid, one panel per mode."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=len(rates), subplot_titles=list(rates))
    for j, (name, r) in enumerate(rates.items()):
        fig.add_trace(go.Heatmap(z=r, x=np.round(stds, 2), y=np.round(means, 2), zmin=0, zmax=1,
                                 colorscale="Viridis", showscale=(j == len(rates) - 1)), row=1, col=j + 1)
        fig.update_xaxes(title_text="initial weight std", row=1, col=j + 1)
        fig.update_yaxes(title_text="initial weight mean", row=1, col=j + 1)
    fig.update_layout(title="Share of runs that learn the toy task", height=height,
                      margin=dict(l=50, r=20, t=60, b=40))
    return fig
