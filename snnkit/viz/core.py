"""Basic figures: spike rasters, membrane traces, training curves."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy

WEBGL_POINTS = 5000      # raster dots above which WebGL (Scattergl) is used instead of SVG

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _go():
    import plotly.graph_objects as go
    return go


def setup_notebook(renderer: str | None = None) -> str:
    """Choose plotly's renderer so figures show in JupyterLab AND survive HTML export offline.

    ``fig.show()`` in a kernel emits only plotly's MIME type by default, which nbconvert's HTML
    cannot draw; adding the ``notebook`` renderer also embeds plotly.js (once, offline) as HTML.
    """
    import sys
    # fig.show() imports nbformat -> jsonschema, whose optional RFC 3987 plugin spends ~3 s building
    # a grammar at import; no figure or notebook check uses it, and jsonschema runs without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    import plotly.io as pio
    pio.renderers.default = renderer or "plotly_mimetype+notebook"
    pio.templates.default = "plotly_white"
    return pio.renderers.default


def raster(spikes, sample: int = 0, dt: float | None = None, title: str = "Spike raster",
           time_unit: str = "s", neuron_label: str = "neuron", max_neurons: int | None = None,
           height: int = 320, color=None, name=None, fig=None):
    """Dot raster of one sample (SVG markers; WebGL only above ``WEBGL_POINTS`` dots).

    ``spikes`` is a :class:`~snnkit.spikes.SpikeTrains` (times), a 0/1 raster ``[T, N]`` or a batch
    of rasters ``[B, T, N]`` (then ``sample`` picks one; ``dt`` converts steps to time).
    """
    go = _go()
    if hasattr(spikes, "times"):
        t = to_numpy(spikes.times)[sample]                      # [N, S]
        n_idx, s_idx = np.nonzero(np.isfinite(t))
        xs, ys = t[n_idx, s_idx], n_idx
        x_title = f"time ({time_unit})"
    else:
        r = to_numpy(spikes)
        if r.ndim == 3:
            r = r[sample]
        if r.ndim != 2:
            raise ValueError(f"spikes must be SpikeTrains, [T, N] or [B, T, N]; got shape {r.shape}")
        step, ys = np.nonzero(r)
        xs = step * dt if dt else step
        x_title = f"time ({time_unit})" if dt else "time step"
    if max_neurons is not None:
        keep = ys < max_neurons
        xs, ys = xs[keep], ys[keep]
    fig = fig or go.Figure()
    # SVG unless the dots are too many for it: a browser keeps only a few WebGL contexts (about 16)
    # and blanks the oldest figures of a page or a panel moved many times when it runs out.
    trace = go.Scattergl if len(xs) > WEBGL_POINTS else go.Scatter
    fig.add_trace(trace(x=xs, y=ys, mode="markers", name=name or "spikes",
                               marker=dict(symbol="line-ns-open", size=9, line_width=1.5,
                                           color=color or _COLORS[0])))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=neuron_label, height=height,
                      margin=dict(l=50, r=20, t=50, b=40), showlegend=name is not None)
    return fig


def membrane_trace(t, v, threshold=None, spike_times=None, title="Membrane potential",
                   names=None, time_unit="s", height=320, fig=None, dash=None):
    """One or several potential traces over time, the threshold line and spike markers.

    ``v`` is ``[T]`` or ``[K, T]`` (K traces, named by ``names``)."""
    go = _go()
    t, v = to_numpy(t), np.atleast_2d(to_numpy(v))
    names = names or [f"u{k}" if len(v) > 1 else "u(t)" for k in range(len(v))]
    fig = fig or go.Figure()
    for k, vk in enumerate(v):
        fig.add_trace(go.Scatter(x=t, y=vk, mode="lines", name=names[k],
                                 line=dict(color=_COLORS[k % len(_COLORS)], dash=dash)))
    if threshold is not None:
        fig.add_hline(y=float(threshold), line_dash="dot", line_color="gray",
                      annotation_text="threshold", annotation_position="top left")
    if spike_times is not None:
        st = np.asarray(to_numpy(spike_times), dtype=float).ravel()
        st = st[np.isfinite(st)]
        fig.add_trace(go.Scatter(x=st, y=[float(threshold) if threshold is not None else 0.0] * len(st),
                                 mode="markers", name="spikes",
                                 marker=dict(symbol="star", size=11, color="black")))
    fig.update_layout(title=title, xaxis_title=f"time ({time_unit})", yaxis_title="potential",
                      height=height, margin=dict(l=50, r=20, t=50, b=40))
    return fig


def training_curves(history, metrics=("loss", "acc"), title="Training", height=320, names=None):
    """Loss and accuracy per epoch from one or several Trainer histories (dicts)."""
    go = _go()
    from plotly.subplots import make_subplots
    hs = history if isinstance(history, (list, tuple)) else [history]
    if names is None:
        names = [f"run {i}" for i in range(len(hs))] if len(hs) > 1 else [""]
    names = list(names)
    if len(names) != len(hs):
        raise ValueError(f"names must give one name per history: {len(names)} names for {len(hs)} histories")
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics))
    for i, (h, nm) in enumerate(zip(hs, names)):
        c = _COLORS[i % len(_COLORS)]
        for j, m in enumerate(metrics):
            for split, dash in (("train", None), ("val", "dash")):
                y = h.get(f"{split}_{m}")
                if y is None or not np.isfinite(np.asarray(y, dtype=float)).any():
                    continue
                fig.add_trace(go.Scatter(x=h["epoch"], y=y, mode="lines+markers",
                                         name=f"{nm} {split}".strip(), legendgroup=f"{nm}{split}",
                                         showlegend=(j == 0), line=dict(color=c, dash=dash)),
                              row=1, col=j + 1)
            fig.update_xaxes(title_text="epoch", row=1, col=j + 1)
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=60, b=40))
    return fig


def bar(labels, values, title="", yaxis_title="", height=320, error=None):
    """A plain bar chart (e.g. firing rate per layer)."""
    go = _go()
    fig = go.Figure(go.Bar(x=list(labels), y=to_numpy(values),
                           error_y=None if error is None else dict(type="data", array=to_numpy(error))))
    fig.update_layout(title=title, yaxis_title=yaxis_title, height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig
