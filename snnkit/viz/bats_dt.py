"""Figures of the time-discretization study (notebook 05). Plotly is imported inside the functions.

* :func:`raster_compare`   one sample, several layers: continuous spikes vs grid spikes
* :func:`membrane_compare` one neuron's potential, continuous vs discretized, with the dt grid
* :func:`explorer_figure`  both of the above in one figure (the dt slider's panel)
* :func:`sweep_figure`     accuracy (with the share of samples whose output is silent), spikes per
                           sample and silent share vs dt (from the tidy rows)
* :func:`latency_figure`   latency curves (share of the label neuron's spikes before t), one per dt,
                           every curve its own colour (continuous black, grids along a colour scale)
* :func:`recorded_mnist_figure`  the recorded real-MNIST sweep (GPU, several seeds) beside the study's
                           reported band: test accuracy (%) vs dt (ms), one real data set on one axis
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .core import _COLORS


def _events(spikes, sample):
    t = to_numpy(spikes.times)[sample]
    n, s = np.nonzero(np.isfinite(t))
    return t[n, s], n


def raster_compare(continuous, discrete, names, sample=0, dt=None, height=None, unit_scale=1000.0,
                   unit="ms"):
    """Rasters of one sample, one row per layer: continuous-time spikes (circles) and the spikes of
    the discretized network (ticks). ``continuous`` and ``discrete`` are lists of SpikeTrains."""
    from plotly.subplots import make_subplots
    if len(continuous) != len(discrete) or len(names) != len(discrete):
        raise ValueError("continuous, discrete and names must list the same layers")
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=list(names),
                        vertical_spacing=0.08)
    for r, (c, d) in enumerate(zip(continuous, discrete), start=1):
        _add_raster(fig, r, c, d, sample, dt, unit_scale, unit)
    fig.update_xaxes(title_text=f"time ({unit})", row=len(names), col=1)
    fig.update_layout(height=height or 260 * len(names), margin=dict(l=50, r=20, t=50, b=40),
                      title="Same weights, continuous vs discretized spikes")
    return fig


def _add_raster(fig, row, continuous, discrete, sample, dt, unit_scale, unit):
    """One layer's row of a raster comparison: continuous spikes (circles), grid spikes (ticks)."""
    import plotly.graph_objects as go
    tc, nc = _events(continuous, sample)
    td, nd = _events(discrete, sample)
    fig.add_trace(go.Scatter(x=tc * unit_scale, y=nc, mode="markers", name="continuous",
                             legendgroup="c", showlegend=row == 1,
                             marker=dict(symbol="circle-open", size=7, color=_COLORS[0])), row=row, col=1)
    fig.add_trace(go.Scatter(x=td * unit_scale, y=nd, mode="markers", name=f"dt = {dt * unit_scale:g} {unit}"
                             if dt else "discretized", legendgroup="d", showlegend=row == 1,
                             marker=dict(symbol="line-ns-open", size=10, line_width=2, color=_COLORS[1])),
                  row=row, col=1)
    fig.update_yaxes(title_text="neuron", row=row, col=1)


def _add_membrane(fig, t, u_continuous, u_discrete, spikes_continuous, spikes_discrete, theta, dt,
                  unit_scale, row=None):
    """The traces of :func:`membrane_compare` (into subplot ``row`` when given)."""
    import plotly.graph_objects as go
    at = dict(row=row, col=1) if row else {}
    t = np.asarray(t) * unit_scale
    fig.add_trace(go.Scatter(x=t, y=u_continuous, mode="lines", name="u continuous",
                             line=dict(color=_COLORS[0])), **at)
    fig.add_trace(go.Scatter(x=t, y=u_discrete, mode="lines", name="u discretized",
                             line=dict(color=_COLORS[1], dash="dash")), **at)
    for st, col, sym, nm in ((spikes_continuous, _COLORS[0], "circle-open", "spikes continuous"),
                             (spikes_discrete, _COLORS[1], "line-ns-open", "spikes on the grid")):
        st = np.asarray(st, dtype=float).ravel()
        st = st[np.isfinite(st)]
        fig.add_trace(go.Scatter(x=st * unit_scale, y=np.full(len(st), float(theta)), mode="markers", name=nm,
                                 marker=dict(symbol=sym, size=12, line_width=2, color=col)), **at)
    fig.add_trace(go.Scatter(x=[t[0], t[-1]], y=[float(theta)] * 2, mode="lines", name="threshold",
                             hoverinfo="skip", line=dict(color="gray", dash="dot", width=1)), **at)
    if dt:
        n_lines = int((t[-1] - t[0]) / (dt * unit_scale))
        if 0 < n_lines <= 100:                         # the grid, while it stays readable: one trace
            lo = float(min(np.min(u_continuous), np.min(u_discrete), 0.0))
            hi = float(max(np.max(u_continuous), np.max(u_discrete), theta))
            gx = t[0] + np.arange(n_lines + 1) * dt * unit_scale
            fig.add_trace(go.Scatter(x=np.repeat(gx, 3), y=np.tile([lo, hi, np.nan], len(gx)), mode="lines",
                                     name="grid", hoverinfo="skip",
                                     line=dict(color="#e5e5e5", width=1)), **at)


def membrane_compare(t, u_continuous, u_discrete, spikes_continuous, spikes_discrete, theta, dt=None,
                     unit_scale=1000.0, unit="ms", title="Membrane potential of one neuron", height=340):
    """u(t) of one neuron in the continuous and the discretized network, threshold, spikes, grid."""
    import plotly.graph_objects as go
    fig = go.Figure()
    _add_membrane(fig, t, u_continuous, u_discrete, spikes_continuous, spikes_discrete, theta, dt, unit_scale)
    fig.update_layout(title=title, xaxis_title=f"time ({unit})", yaxis_title="u (a.u.; dotted: threshold θ)",
                      height=height, margin=dict(l=50, r=20, t=50, b=40))
    return fig


def explorer_figure(continuous, discrete, names, t, u_continuous, u_discrete, spikes_continuous,
                    spikes_discrete, theta, dt=None, sample=0, unit_scale=1000.0, unit="ms",
                    membrane_title="membrane potential", title=None):
    """One figure for the dt slider: a raster row per layer (as :func:`raster_compare`), then the
    membrane potential of one output neuron (as :func:`membrane_compare`), on one shared time axis."""
    from plotly.subplots import make_subplots
    if len(continuous) != len(discrete) or len(names) != len(discrete):
        raise ValueError("continuous, discrete and names must list the same layers")
    n = len(names)
    fig = make_subplots(rows=n + 1, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=list(names) + [membrane_title])
    for r, (c, d) in enumerate(zip(continuous, discrete), start=1):
        _add_raster(fig, r, c, d, sample, dt, unit_scale, unit)
    _add_membrane(fig, t, u_continuous, u_discrete, spikes_continuous, spikes_discrete, theta, dt, unit_scale,
                  row=n + 1)
    fig.update_yaxes(title_text="u", row=n + 1, col=1)
    fig.update_xaxes(title_text=f"time ({unit})", row=n + 1, col=1)
    fig.update_layout(height=230 * n + 300, margin=dict(l=50, r=20, t=60, b=40),
                      title=title or "Same weights, continuous vs discretized")
    return fig


def sweep_figure(rows, unit_scale=1000.0, unit="ms", height=340, chance=None):
    """Three panels over dt: test accuracy, spikes per sample (per layer), silent share (per layer).

    The accuracy panel also shows, where the rows have it (``silent_output_share``), the share of
    test samples on which the output layer stays silent: those predict nothing and count as
    wrong, so accuracy <= 1 - that share. ``chance`` (1 / classes) draws the level of a guess."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    dts = sorted({r["dt"] for r in rows})
    first = [next(r for r in rows if r["dt"] == d) for d in dts]
    acc = [r["accuracy"] for r in first]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig = make_subplots(rows=1, cols=3, subplot_titles=["test accuracy (share of samples)", "spikes per sample",
                                                        "silent share (sample, neuron)"])
    x = [d * unit_scale for d in dts]
    fig.add_trace(go.Scatter(x=x, y=acc, mode="lines+markers", name="accuracy", line=dict(color="black")),
                  row=1, col=1)
    if all("silent_output_share" in r for r in first):
        fig.add_trace(go.Scatter(x=x, y=[r["silent_output_share"] for r in first], mode="lines+markers",
                                 name="samples with a silent output", line=dict(color="gray", dash="dash"),
                                 marker=dict(symbol="x")), row=1, col=1)
    if chance is not None:
        fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[float(chance)] * 2, mode="lines", name="chance (a guess)",
                                 line=dict(color="gray", dash="dot", width=1), hoverinfo="skip"), row=1, col=1)
    for i, name in enumerate(layers):
        sub = sorted((r for r in rows if r["layer"] == name), key=lambda r: r["dt"])
        for col, key in ((2, "spikes_per_sample"), (3, "silent_share")):
            fig.add_trace(go.Scatter(x=[r["dt"] * unit_scale for r in sub], y=[r[key] for r in sub],
                                     mode="lines+markers", name=f"layer {name}", legendgroup=name,
                                     showlegend=col == 2, line=dict(color=_COLORS[i % len(_COLORS)])),
                          row=1, col=col)
    for c in (1, 2, 3):
        fig.update_xaxes(title_text=f"dt ({unit}); 0 = continuous", row=1, col=c)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=3)
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=60, b=40), title="What the grid step costs")
    return fig


def dt_colors(n):
    """``n`` distinct colours ordered along a colour scale (small dt dark blue, large dt green-yellow),
    so that a legend of many grid steps never repeats a colour and reads as an order."""
    from plotly.colors import sample_colorscale
    if n <= 0:
        return []
    return sample_colorscale("Viridis", list(np.linspace(0.0, 0.85, n)) if n > 1 else [0.0])


def latency_figure(latency, t_grid, unit_scale=1000.0, unit="ms", height=340):
    """One curve per dt: share of the label neuron's spikes emitted before t. Continuous time is
    black, the grids take distinct colours in the order of dt (:func:`dt_colors`)."""
    import plotly.graph_objects as go
    fig = go.Figure()
    t = np.asarray(t_grid) * unit_scale
    items = sorted(latency.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
    colors = iter(dt_colors(sum(d is not None for d, _ in items)))
    for d, curve in items:
        color = "black" if d is None else next(colors)
        if curve is None:
            continue
        name = "continuous" if d is None else f"dt = {d * unit_scale:g} {unit}"
        fig.add_trace(go.Scatter(x=t, y=curve, mode="lines", name=name,
                                 line=dict(color=color, width=3 if d is None else 2)))
    fig.update_layout(title="Latency: share of the label neuron's spikes emitted before t",
                      xaxis_title=f"t ({unit})", yaxis_title="share", yaxis_range=[0, 1.02], height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def recorded_mnist_figure(by_seed, fork, earlier=None, height=380):
    """The MNIST sweep kept in ``reproductions/recorded/time_discretization_sweep.json`` beside the
    study's numbers: for every seed, the test accuracy (%) of the network *trained* on each grid
    (filled markers) and of the continuous network's weights only *run* on it (open markers, where
    logged); the study's band (``fork["band_percent"]`` over ``fork["band_dt_ms"]``) as a shaded
    rectangle and its collapse range at ``fork["collapse_dt_ms"]`` as a bar. Both are real MNIST.
    ``earlier``: runs made with an earlier grid rule (the record's ``earlier_rule["by_seed"]``), drawn
    as dotted lines of the same seed's colour, trained accuracy only."""
    import plotly.graph_objects as go
    fig = go.Figure()
    (x0, x1), (y0, y1) = fork["band_dt_ms"], fork["band_percent"]
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor="rgba(120,120,120,0.25)", line_width=0)
    fig.add_trace(go.Scatter(x=[(x0 + x1) / 2], y=[(y0 + y1) / 2], mode="markers", marker=dict(size=1, color="gray"),
                             name=f"study: {y0:g}-{y1:g} % for {x0:g}-{x1:g} ms (shaded)"))
    c0, c1 = fork["collapse_percent"]
    fig.add_trace(go.Scatter(x=[fork["collapse_dt_ms"]] * 2, y=[c0, c1], mode="lines", line=dict(color="gray", width=8),
                             name=f"study: {c0:g}-{c1:g} % at {fork['collapse_dt_ms']:g} ms"))
    for i, run in enumerate(by_seed):
        color = _COLORS[i % len(_COLORS)]
        fig.add_trace(go.Scatter(x=run["dt_ms"], y=run["trained"], mode="markers+lines", name=f"seed {run['seed']}: trained on the grid",
                                 line=dict(color=color), marker=dict(size=9)))
        pts = [(d, a) for d, a in zip(run["dt_ms"], run["continuous_weights_on_grid"]) if a is not None]
        if pts:
            fig.add_trace(go.Scatter(x=[d for d, _ in pts], y=[a for _, a in pts], mode="markers",
                                     name=f"seed {run['seed']}: continuous weights run on it",
                                     marker=dict(color=color, size=10, symbol="circle-open", line=dict(width=2))))
    seeds = [r["seed"] for r in by_seed]
    for run in earlier or []:
        color = _COLORS[seeds.index(run["seed"]) % len(_COLORS)] if run["seed"] in seeds else "gray"
        fig.add_trace(go.Scatter(x=run["dt_ms"], y=run["trained"], mode="markers+lines",
                                 name=f"seed {run['seed']}: trained, earlier rule (hidden spikes a step late)",
                                 line=dict(color=color, dash="dot", width=1), marker=dict(size=6, symbol="x")))
    fig.update_layout(title="Real MNIST, 10 epochs per grid: the recorded GPU runs beside the study",
                      xaxis_title="dt (ms); 0 = continuous", yaxis_title="test accuracy (%)", height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def count_vs_weight_figure(weights, counts, theta, height=340):
    """Spikes of one neuron in its window against the common weight ``w`` of its inputs, one line per
    clock (``counts``: label -> counts, one per weight; ``theta``: the neuron's threshold, for the axis),
    as notebook 05 draws it: in continuous time the count grows with ``w``; on a coarse grid it can fall
    (a rejected crossing also loses its reset)."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for i, (label, c) in enumerate(counts.items()):
        fig.add_trace(go.Scatter(x=list(map(float, weights)), y=[int(v) for v in c], mode="markers+lines", name=label,
                                 line=dict(color=_COLORS[i % len(_COLORS)])))
    fig.update_layout(title="One neuron: spike count against the weight of its inputs",
                      xaxis_title=f"weight w of every input (dimensionless; the threshold is theta = {theta:g})",
                      yaxis_title="output spikes in the window (count)", height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig
