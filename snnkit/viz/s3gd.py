"""Figures of the S3GD notebook: membrane histograms with the active band, dense vs sparse
gradient maps, active fraction over time, and backward speed / memory bars."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from .core import _COLORS, _go


def _histogram_bars(potentials: dict, threshold, delta, bins, v_range):
    """One bar trace per layer: the share of its (b, t, j) entries per V bin, named with its active fraction."""
    go = _go()
    edges = np.linspace(*v_range, bins + 1)
    bars = []
    for k, (name, V) in enumerate(potentials.items()):
        v = to_numpy(V).ravel()
        frac = float(np.mean(np.abs(v - threshold) < delta))
        hist, _ = np.histogram(v, edges)
        bars.append(go.Bar(x=0.5 * (edges[1:] + edges[:-1]), y=hist / max(v.size, 1),
                           name=f"{name}: active {100 * frac:.2f}%", marker_color=_COLORS[k % len(_COLORS)],
                           opacity=0.6, legendgroup="hist"))
    return bars


def membrane_histogram(potentials: dict, threshold=1.0, delta=0.2, bins=120, v_range=(-1.0, 2.0),
                       title=None, height=330):
    """Histogram of V per layer ({name: V array}); the band |V - threshold| < delta is shaded and
    each trace's legend gives its active fraction."""
    go = _go()
    fig = go.Figure(_histogram_bars(potentials, threshold, delta, bins, v_range))
    fig.add_vrect(x0=threshold - delta, x1=threshold + delta, fillcolor="orange", opacity=0.25, line_width=0,
                  annotation_text=f"active band ±{delta:g}", annotation_position="top left")
    fig.add_vline(x=threshold, line_dash="dot", line_color="gray")
    fig.update_layout(barmode="overlay", title=title or "Membrane potentials of all (b, t, j) entries",
                      xaxis_title="membrane potential V (threshold = 1)", yaxis_title="fraction of entries",
                      yaxis_type="log", height=height, margin=dict(l=50, r=20, t=50, b=40))
    return fig


def gradient_maps(dense: dict, sparse: dict, cosines: dict, layer="hidden2", max_rows=64, height=330):
    """Side-by-side heatmaps of one layer's dense and sparse weight gradients (same color scale)."""
    go = _go()
    from plotly.subplots import make_subplots
    d, s = to_numpy(dense[layer])[:max_rows], to_numpy(sparse[layer])[:max_rows]
    lim = float(max(np.abs(d).max(), np.abs(s).max(), 1e-30))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("dense dW", "sparse dW"), horizontal_spacing=0.08)
    for c, m in enumerate((d, s)):
        fig.add_trace(go.Heatmap(z=m, zmin=-lim, zmax=lim, colorscale="RdBu", showscale=c == 1), row=1, col=c + 1)
        fig.update_xaxes(title_text="post neuron j (index)", row=1, col=c + 1)
    fig.update_yaxes(title_text="pre neuron i (index)", row=1, col=1)
    fig.update_layout(title=f"{layer}: cosine(dense, sparse) = {cosines[layer]:.4f}", height=height,
                      margin=dict(l=50, r=20, t=60, b=40))
    return fig


def delta_figure(potentials: dict, threshold, delta, dense: dict, sparse: dict, cosines: dict, active: dict,
                 curve: dict, layer="hidden2", floor=0.9, max_rows=64, bins=120, v_range=(-1.0, 2.0), height=640):
    """The delta panel in one figure: top left, the membrane histogram with the band; top right, the
    cosine(dense, sparse) of each hidden layer against delta (``curve`` = {"delta": [...],
    "cosine": {layer: [...]}}, log axis) with the current delta marked and the ``floor`` line; below,
    one layer's dense and sparse weight gradients on one colour scale."""
    go = _go()
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.16, horizontal_spacing=0.1,
                        subplot_titles=("membrane potentials, band shaded", "cosine(dense, sparse) against delta",
                                        f"{layer}: dense dW", f"{layer}: sparse dW"))
    for bar in _histogram_bars(potentials, threshold, delta, bins, v_range):
        fig.add_trace(bar, row=1, col=1)
    fig.add_vrect(x0=threshold - delta, x1=threshold + delta, fillcolor="orange", opacity=0.25, line_width=0,
                  row=1, col=1)
    fig.update_xaxes(title_text="membrane potential V", row=1, col=1)
    fig.update_yaxes(title_text="fraction of entries", type="log", row=1, col=1)
    names = [k for k in curve["cosine"] if k in potentials]
    for k, name in enumerate(names):
        fig.add_trace(go.Scatter(x=curve["delta"], y=curve["cosine"][name], mode="lines+markers", name=f"{name} cosine",
                                 line_color=_COLORS[k % len(_COLORS)], marker_size=4), row=1, col=2)
        fig.add_trace(go.Scatter(x=[delta], y=[cosines[name]], mode="markers", showlegend=False,
                                 marker=dict(size=12, symbol="circle-open", color=_COLORS[k % len(_COLORS)],
                                             line_width=2)), row=1, col=2)
    fig.add_hline(y=floor, line_dash="dash", line_color="gray", row=1, col=2,
                  annotation_text=f"cosine {floor:g}", annotation_position="bottom right")
    fig.update_xaxes(title_text="band half-width delta (log)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="cosine similarity", range=[min(-0.1, float(np.nanmin(
        [np.nanmin(v) for v in curve["cosine"].values()])) - 0.05), 1.05], row=1, col=2)
    d, sp = to_numpy(dense[layer])[:max_rows], to_numpy(sparse[layer])[:max_rows]
    lim = float(max(np.abs(d).max(), np.abs(sp).max(), 1e-30))
    for c, m in enumerate((d, sp)):
        fig.add_trace(go.Heatmap(z=m, zmin=-lim, zmax=lim, colorscale="RdBu", showscale=c == 1,
                                 colorbar=dict(len=0.4, y=0.2, title="dL/dW")), row=2, col=c + 1)
        fig.update_xaxes(title_text="post neuron j (index)", row=2, col=c + 1)
    fig.update_yaxes(title_text="pre neuron i (index)", row=2, col=1)
    fig.update_layout(barmode="overlay", height=height, margin=dict(l=60, r=20, t=90, b=50),
                      title=f"delta = {delta:.3g}: active " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in active.items())
                      + "<br>cosine(dense, sparse) " + ", ".join(f"{k} {v:.3f}" for k, v in cosines.items()))
    return fig


def active_over_time(per_step: dict, dt=1.0, time_unit="step", title="Active fraction per time step", height=300):
    """Lines of the active fraction per step for each layer ({name: [T] array})."""
    go = _go()
    fig = go.Figure()
    for k, (name, f) in enumerate(per_step.items()):
        f = np.asarray(f)
        fig.add_trace(go.Scatter(x=np.arange(len(f)) * dt, y=100 * f, mode="lines", name=name,
                                 line_color=_COLORS[k % len(_COLORS)]))
    fig.update_layout(title=title, xaxis_title=f"time ({time_unit})", yaxis_title="active entries (%)",
                      height=height, margin=dict(l=50, r=20, t=50, b=40))
    return fig


def speed_memory_bars(rows, title="Backward of the whole network", height=330):
    """rows: list of dicts with 'label', 'backward_ms', 'memory_mib' -> two bar charts (log time)."""
    go = _go()
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=("backward time (ms)", "peak backward memory (MiB)"))
    labels = [r["label"] for r in rows]
    fig.add_trace(go.Bar(x=labels, y=[r["backward_ms"] for r in rows], marker_color=_COLORS[0],
                         text=[f"{r['backward_ms']:.3g}" for r in rows], showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=[r["memory_mib"] for r in rows], marker_color=_COLORS[1],
                         text=[f"{r['memory_mib']:.3g}" for r in rows], showlegend=False), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=60, b=80))
    return fig


BENCH_PATHS = ("ours sparse", "ours sparse + graph", "ours fused dense", "PyTorch dense")


def recorded_benchmark(path=None):
    """Rows of the newest S3GD table in benchmarks/RESULTS.md (the first ``###`` run of the S3GD
    section that has one): [{config, label, forward_ms, backward_ms, memory_mib, run, date, device}]
    ([] when the file or the section is missing). ``run`` is that run's heading line, ``date`` and
    ``device`` are read from it ("" where it names none), so that recorded numbers are shown with
    where and when they were measured."""
    p = Path(path) if path else Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"
    if not p.is_file():
        return []
    text = p.read_text()
    m = re.search(r"^## S3GD\b(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if not m:
        return []
    for part in re.split(r"^### ", m.group(1), flags=re.M):     # newest run first: its table wins
        rows, heading = [], part.splitlines()[0].strip() if part.strip() else ""
        date = re.search(r"\d{4}-\d{2}-\d{2}", heading)
        device = re.search(r"NVIDIA [\w-]+", heading)
        for line in part.splitlines():
            cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
            if len(cells) >= 5 and cells[0] in ("shd", "fashion") and cells[1] in BENCH_PATHS:
                try:
                    rows.append(dict(config=cells[0], label=cells[1], forward_ms=float(cells[2]),
                                     backward_ms=float(cells[3]), memory_mib=float(cells[4]), run=heading,
                                     date=date.group(0) if date else "", device=device.group(0) if device else ""))
                except ValueError:
                    continue
        if rows:
            return rows
    return []
