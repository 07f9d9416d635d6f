"""Figures of notebook 00 (welcome): one image under the spike codes of :mod:`snnkit.datasets`."""
from __future__ import annotations

import numpy as np

__all__ = ["pixel_codes_figure"]


def pixel_codes_figure(x, log_steps, poisson_counts, title="", side=8, height=340):
    """Three images of one ``side x side`` picture: its intensities ``x``, the step of each pixel's
    log-latency spike (``log_steps``, NaN = silent, drawn blank) and each pixel's Poisson spike
    count (``poisson_counts``). Row 0 of the picture is drawn at the top."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    def img(a):      # NaN -> None: a FigureWidget's JSON has no NaN (and warns on stderr)
        a = np.asarray(a, dtype=float).reshape(side, side)
        return [[None if np.isnan(v) else float(v) for v in row] for row in a]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "intensity x", "log-latency: spike step (blank = silent)", "Poisson: spikes per pixel"))
    bar = lambda i, text: dict(x=0.255 + 0.37 * i - 0.015 * i, len=0.8, thickness=10, title=dict(text=text, side="right"))
    fig.add_trace(go.Heatmap(z=img(x), colorscale="gray_r", zmin=0, zmax=1, colorbar=bar(0, "x"),
                             hovertemplate="row %{y}, col %{x}: x = %{z:.2f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=img(log_steps), colorscale="Viridis", colorbar=bar(1, "step"),
                             hovertemplate="row %{y}, col %{x}: spike at step %{z}<extra></extra>"), 1, 2)
    fig.add_trace(go.Heatmap(z=img(poisson_counts), colorscale="Reds", zmin=0, colorbar=bar(2, "spikes"),
                             hovertemplate="row %{y}, col %{x}: %{z} spikes<extra></extra>"), 1, 3)
    for c in (1, 2, 3):
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if c == 1 else c}", showticklabels=False, row=1, col=c)
        fig.update_xaxes(showticklabels=False, title_text="pixel column", row=1, col=c)
    fig.update_layout(title=dict(text=title, y=0.97, yanchor="top"), height=height + 20, margin=dict(l=20, r=20, t=105, b=40))
    return fig
