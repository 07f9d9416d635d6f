"""Figures of the S3GD notebook: membrane histograms with the active band, dense vs sparse
gradient maps, active fraction over time, and backward speed / memory bars."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from .core import _COLORS, _go


def membrane_histogram(potentials: dict, threshold=1.0, delta=0.2, bins=120, v_range=(-1.0, 2.0),
                       title=None, height=330):
    """Histogram of V per layer ({name: V array}); the band |V - threshold| < delta is shaded and
    each trace's legend gives its active fraction."""
    go = _go()
    fig = go.Figure()
    edges = np.linspace(*v_range, bins + 1)
    for k, (name, V) in enumerate(potentials.items()):
        v = to_numpy(V).ravel()
        frac = float(np.mean(np.abs(v - threshold) < delta))
        hist, _ = np.histogram(v, edges)
        fig.add_trace(go.Bar(x=0.5 * (edges[1:] + edges[:-1]), y=hist / max(v.size, 1), name=f"{name}: active {100 * frac:.2f}%",
                             marker_color=_COLORS[k % len(_COLORS)], opacity=0.6))
    fig.add_vrect(x0=threshold - delta, x1=threshold + delta, fillcolor="orange", opacity=0.25, line_width=0,
                  annotation_text=f"active band ±{delta:g}", annotation_position="top left")
    fig.add_vline(x=threshold, line_dash="dot", line_color="gray")
    fig.update_layout(barmode="overlay", title=title or "Membrane potentials of all (b, t, j) entries",
                      xaxis_title="V", yaxis_title="fraction of entries", yaxis_type="log", height=height,
                      margin=dict(l=50, r=20, t=50, b=40))
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
        fig.update_xaxes(title_text="post neuron j", row=1, col=c + 1)
    fig.update_yaxes(title_text="pre neuron i", row=1, col=1)
    fig.update_layout(title=f"{layer}: cosine(dense, sparse) = {cosines[layer]:.4f}", height=height,
                      margin=dict(l=50, r=20, t=60, b=40))
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
    section that has one): [{config, label, forward_ms, backward_ms, memory_mib}] ([] when the file
    or the section is missing)."""
    p = Path(path) if path else Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"
    if not p.is_file():
        return []
    text = p.read_text()
    m = re.search(r"^## S3GD\b(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if not m:
        return []
    for part in re.split(r"^### ", m.group(1), flags=re.M):     # newest run first: its table wins
        rows = []
        for line in part.splitlines():
            cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
            if len(cells) >= 5 and cells[0] in ("shd", "fashion") and cells[1] in BENCH_PATHS:
                try:
                    rows.append(dict(config=cells[0], label=cells[1], forward_ms=float(cells[2]),
                                     backward_ms=float(cells[3]), memory_mib=float(cells[4])))
                except ValueError:
                    continue
        if rows:
            return rows
    return []
