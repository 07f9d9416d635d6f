"""Figures of notebook 01 (one LIF, three clocks): the three neurons overlaid, their surrogates."""
from __future__ import annotations

import numpy as np

from .core import _COLORS

__all__ = ["clocks_figure", "surrogate_figure", "input_marks", "mark_inputs", "MODEL_COLORS"]

MODEL_COLORS = {"BATS": _COLORS[0], "S3GD": _COLORS[1], "STBP": _COLORS[2]}


def input_marks(t_in, w, scale=1.0, xref="x", yref="y domain"):
    """Shapes and annotations (plain dicts, added in one layout update: plotly's add_vline is slow
    enough to matter in a slider callback) marking the input spike times ``t_in`` (multiplied by
    ``scale`` to match the x axis) with their weights ``w``: green excitatory, purple inhibitory."""
    shapes, notes = [], []
    for t, wj in zip(np.ravel(t_in), np.ravel(w)):
        x = float(t) * scale
        color = "green" if wj >= 0 else "purple"
        shapes.append(dict(type="line", xref=xref, yref=yref, x0=x, x1=x, y0=0, y1=1,
                           line=dict(color=color, dash="dot", width=1)))
        notes.append(dict(xref=xref, yref=yref, x=x, y=1, text=f"input w={float(wj):g}", showarrow=False,
                          xanchor="left", yanchor="top", font=dict(size=10, color=color)))
    return shapes, notes


def mark_inputs(fig, t_in, w, scale=1.0, xref="x", yref="y domain"):
    """Add :func:`input_marks` to ``fig`` (one layout update); returns ``fig``."""
    shapes, notes = input_marks(t_in, w, scale, xref, yref)
    fig.update_layout(shapes=list(fig.layout.shapes) + shapes, annotations=list(fig.layout.annotations) + notes)
    return fig


def _hline(y, text, xref="x domain", yref="y"):
    return (dict(type="line", xref=xref, yref=yref, x0=0, x1=1, y0=y, y1=y, line=dict(color="gray", dash="dot", width=1)),
            dict(xref=xref, yref=yref, x=0, y=y, text=text, showarrow=False, xanchor="left", yanchor="bottom",
                 font=dict(size=10, color="gray")))


def clocks_figure(r, t_in, w, title="One input, three clocks", height=520):
    """Top: potentials u/theta of BATS (line), S3GD and STBP (one marker per step) with the
    threshold and the input spikes; bottom: the three neurons' spikes. ``r``: a
    :class:`snnkit.neurons.ThreeClocks`. Time in ms."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    ms = 1e3
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=r.t * ms, y=r.u_bats, mode="lines", name="BATS u(t) (continuous)",
                             line=dict(color=MODEL_COLORS["BATS"], width=2)), 1, 1)
    mode = "lines+markers" if len(r.t_k) <= 400 else "lines"
    fig.add_trace(go.Scatter(x=r.t_k * ms, y=r.v_s3gd, mode=mode, name="S3GD V[k] (subtractive reset)",
                             line=dict(color=MODEL_COLORS["S3GD"], width=1, shape="hv"), marker_size=4), 1, 1)
    fig.add_trace(go.Scatter(x=r.t_k * ms, y=r.u_stbp, mode=mode, name="STBP u[k] (hard reset)",
                             line=dict(color=MODEL_COLORS["STBP"], width=1, dash="dash", shape="hv"), marker_size=4), 1, 1)
    shapes, notes = input_marks(t_in, w, scale=ms)
    line, note = _hline(1.0, "threshold")
    fig.update_layout(shapes=shapes + [line], annotations=notes + [note])
    for i, (name, s) in enumerate((("BATS", r.spikes_bats), ("S3GD", r.spikes_s3gd), ("STBP", r.spikes_stbp))):
        fig.add_trace(go.Scatter(x=np.asarray(s) * ms, y=[name] * len(s), mode="markers", showlegend=False,
                                 name=f"{name} spikes", marker=dict(symbol="line-ns-open", size=14, line_width=2,
                                                                    color=MODEL_COLORS[name])), 2, 1)
    fig.update_yaxes(title_text="potential u / ϑ (threshold = 1)", row=1, col=1)
    fig.update_yaxes(title_text="spikes", row=2, col=1, categoryorder="array", categoryarray=["STBP", "S3GD", "BATS"])
    fig.update_xaxes(title_text="time (ms)", row=2, col=1)
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=60, b=40),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0, font_size=11))
    return fig


def surrogate_figure(u, curves, peaks, dtdw, scale, half_width, height=560):
    """Top: the surrogate derivatives dS/du of S3GD and STBP against the potential (units of the
    threshold); bottom: BATS's exact |dt*/dw| against the peak potential of one input spike
    (0 below threshold: no spike, no gradient)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.16, subplot_titles=(
        f"surrogates of dS/du (S3GD scale = {scale:g}, STBP half-width a = {half_width:g})",
        "BATS: exact gradient of the first spike time, one input spike"))
    fig.add_trace(go.Scatter(x=u, y=curves["S3GD fast sigmoid"], name="S3GD fast sigmoid 1/(scale|u-1|+1)²",
                             line=dict(color=MODEL_COLORS["S3GD"])), 1, 1)
    fig.add_trace(go.Scatter(x=u, y=curves["STBP rectangle"], name="STBP rectangle 1[|u-1|<a]/(2a)",
                             line=dict(color=MODEL_COLORS["STBP"], shape="hv")), 1, 1)
    mag = np.abs(np.asarray(dtdw, dtype=float))
    fig.add_trace(go.Scatter(x=peaks, y=np.where(mag > 0, mag * 1e3, np.nan), name="BATS |dt*/dw| (spike exists)",
                             line=dict(color=MODEL_COLORS["BATS"])), 2, 1)
    dead = mag == 0
    floor = float(mag[~dead].min()) * 1e3 / 10 if (~dead).any() else 1e-3    # a log axis has no 0
    fig.add_trace(go.Scatter(x=np.asarray(peaks)[dead], y=np.full(int(dead.sum()), floor), mode="markers",
                             name="BATS: no spike, gradient exactly 0 (drawn at the floor)",
                             marker=dict(color="black", size=4)), 2, 1)
    v = lambda xref, yref: dict(type="line", xref=xref, yref=yref, x0=1, x1=1, y0=0, y1=1,
                                line=dict(color="gray", dash="dot", width=1))
    fig.update_layout(shapes=[v("x", "y domain"), v("x2", "y2 domain")])
    fig.update_xaxes(title_text="potential u / ϑ", row=1, col=1)
    fig.update_yaxes(title_text="dS/du (per unit of u/ϑ)", row=1, col=1)
    fig.update_xaxes(title_text="peak potential u_max / ϑ of the input's response", row=2, col=1)
    fig.update_yaxes(title_text="|dt*/dw| (ms per unit weight)", type="log", row=2, col=1)
    lo, hi = float(min(np.min(u), np.min(peaks))), float(max(np.max(u), np.max(peaks)))
    fig.update_xaxes(range=[lo, hi])                       # one potential scale in both rows
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=60, b=40),
                      legend=dict(font_size=11))
    return fig
