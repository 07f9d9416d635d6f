"""Figures of the STBP + tdBN notebook: firing rate by depth, pre-activation distributions against
the threshold and the surrogate window, weight-gradient norms by depth of a deep plain stack, test
accuracy by threshold and normalization, and firing rates per layer (and per time step)."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .core import _COLORS, _go


def depth_figure(profiles: dict, title="Firing rate by depth", height=340):
    """``profiles``: {label: snnkit.stbp.depth_profile(...)} -> rate and surrogate coverage by layer.

    Two panels side by side, laid out by hand in one ``go.Figure`` call (the same layout as
    ``make_subplots(1, 2)``): make_subplots and the update_* calls cost ~50 ms, a third of a
    widget callback's 150 ms budget."""
    go = _go()
    data = []
    for i, (name, p) in enumerate(profiles.items()):
        c = _COLORS[i % len(_COLORS)]
        data.append(dict(type="scatter", x=p["layer"], y=p["rate"], mode="lines+markers", name=name,
                         legendgroup=name, line=dict(color=c), xaxis="x", yaxis="y"))
        data.append(dict(type="scatter", x=p["layer"], y=p["in_window"], mode="lines+markers", name=name,
                         legendgroup=name, showlegend=False, line=dict(color=c, dash="dot"), xaxis="x2", yaxis="y2"))
    x_title = dict(title=dict(text="layer (depth)"))
    y_range = dict(domain=[0.0, 1.0], range=[0, 1.02])

    def panel_title(text, x):
        return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                    showarrow=False, font=dict(size=16))

    layout = dict(title=dict(text=title), height=height, margin=dict(l=50, r=20, t=70, b=40),
                  xaxis=dict(domain=[0.0, 0.45], anchor="y", **x_title),
                  xaxis2=dict(domain=[0.55, 1.0], anchor="y2", **x_title),
                  yaxis=dict(anchor="x", **y_range), yaxis2=dict(anchor="x2", **y_range),
                  annotations=[panel_title("spikes per neuron per step", 0.225),
                               panel_title("share of u inside the surrogate window", 0.775)])
    return go.Figure(data=data, layout=layout)


# one colour per normalization in every figure of the lesson (labels start with these names)
NORM_COLORS = {"none": "#7f7f7f", "no normalization": "#7f7f7f", "plain BN": "#d62728", "tdBN": "#2ca02c"}


def _color(label, i):
    for name, c in NORM_COLORS.items():
        if label == name or label.startswith(name + ","):
            return c
    return _COLORS[i % len(_COLORS)]


def _panel_title(text, x):
    return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                showarrow=False, font=dict(size=15))


def gradient_depth_figure(profiles: dict, styles: dict | None = None, title="Gradient and activity by depth",
                          height=360):
    """``profiles``: {label: snnkit.stbp.plain.gradient_profile(...)} -> left, the weight-gradient
    norm ||dL/dW_l|| per hidden layer on a log axis; right, the firing rate per layer.

    A norm that is exactly 0 (a layer above a silent one gets no gradient at all) cannot sit on a
    log axis: it is left out of the curve, and the legend says from which layer on it is 0.
    ``styles``: optional {label: plotly line dict} (colour, dash); by default the colour of the
    normalization the label starts with ("none", "plain BN", "tdBN", see NORM_COLORS)."""
    go = _go()
    data = []
    for i, (name, p) in enumerate(profiles.items()):
        line = {"color": _color(name, i), **(styles or {}).get(name, {})}
        g = np.asarray(p["grad_norm"], dtype=float)
        shown = np.where(np.isfinite(g) & (g > 0), g, np.nan)
        zero = np.flatnonzero(g == 0)
        label = name + (f" (0 from layer {int(p['layer'][zero[0]])})" if zero.size else "")
        data.append(dict(type="scatter", x=p["layer"], y=shown, mode="lines+markers", name=label,
                         legendgroup=name, line=line, xaxis="x", yaxis="y"))
        data.append(dict(type="scatter", x=p["layer"], y=p["rate"], mode="lines+markers", name=label,
                         legendgroup=name, showlegend=False, line=line, xaxis="x2", yaxis="y2"))
    x_title = dict(title=dict(text="hidden layer l (input side = 1)"))
    layout = dict(title=dict(text=title), height=height, margin=dict(l=60, r=20, t=70, b=40),
                  xaxis=dict(domain=[0.0, 0.45], anchor="y", **x_title),
                  xaxis2=dict(domain=[0.55, 1.0], anchor="y2", **x_title),
                  yaxis=dict(anchor="x", type="log", exponentformat="power",
                             title=dict(text="||dL/dW_l|| (Frobenius, one batch)")),
                  yaxis2=dict(anchor="x2", range=[0, 1.02], title=dict(text="spikes per neuron per step")),
                  annotations=[_panel_title("weight-gradient norm at initialization", 0.225),
                               _panel_title("firing rate at initialization", 0.775)])
    return go.Figure(data=data, layout=layout)


def accuracy_by_threshold_figure(acc: dict, chance=0.1, title="Test accuracy of the deep plain stack",
                                 x_title="threshold Vth", height=340):
    """Grouped bars: ``acc`` is {normalization label: {Vth: test accuracy}}; a dashed line at chance.
    Our own CPU runs only: no paper number belongs on this axis."""
    go = _go()
    data = []
    for i, (name, by_v) in enumerate(acc.items()):
        data.append(dict(type="bar", name=name, x=[f"Vth = {v:g}" for v in by_v], y=[float(a) for a in by_v.values()],
                         marker=dict(color=_color(name, i)),
                         text=[f"{float(a):.2f}" for a in by_v.values()], textposition="outside"))
    layout = dict(title=dict(text=title), barmode="group", height=height, margin=dict(l=60, r=20, t=60, b=40),
                  yaxis=dict(range=[0, 1.08], title=dict(text="test accuracy")),
                  xaxis=dict(title=dict(text=x_title)),
                  shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=chance, y1=chance,
                               line=dict(color="gray", dash="dash"))],
                  annotations=[dict(text="chance", xref="paper", x=1, y=chance, xanchor="right", yanchor="bottom",
                                    showarrow=False)])
    return go.Figure(data=data, layout=layout)


def preactivation_figure(samples: dict, v_th, half_width, title="Pre-activations against threshold and surrogate window",
                         height=340, bins=80):
    """Histograms of pre-activation samples ({label: array}); the threshold Vth as a line and the
    window |u - Vth| < half_width, where the rectangular surrogate passes gradient, shaded. (Shapes and
    labels go straight into the layout: add_vrect/add_vline cost ~40 ms of a callback's 150.)"""
    go = _go()
    data = [dict(type="histogram", x=to_numpy(v).ravel(), name=name, nbinsx=bins, histnorm="probability density",
                 opacity=0.6, marker=dict(color=_COLORS[i % len(_COLORS)]))
            for i, (name, v) in enumerate(samples.items())]
    lo, hi = v_th - half_width, v_th + half_width
    full_height = dict(xref="x", yref="y domain", y0=0, y1=1)
    label = dict(xref="x", yref="y domain", y=1, xanchor="left", yanchor="top", showarrow=False)
    layout = dict(title=dict(text=title), barmode="overlay", height=height, margin=dict(l=50, r=20, t=60, b=40),
                  xaxis=dict(title=dict(text="pre-activation x[t]")), yaxis=dict(title=dict(text="density")),
                  shapes=[dict(type="rect", x0=lo, x1=hi, fillcolor="orange", opacity=0.15, line=dict(width=0),
                               **full_height),
                          dict(type="line", x0=v_th, x1=v_th, line=dict(color="black", dash="dash"), **full_height)],
                  annotations=[dict(text="surrogate window", x=lo, **label), dict(text="Vth", x=v_th, **label)])
    return go.Figure(data=data, layout=layout)


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
