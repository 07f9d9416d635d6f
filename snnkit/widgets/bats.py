"""Panels of the BATS notebooks. Each callback is a plain function returning a figure (or text);
the notebooks call them directly too (headless), the panels only add sliders."""
from __future__ import annotations

import numpy as np

from ..bats import simulate
from ..bats.neuron import potential
from ..viz.bats import neuron_figure, spike_time_curve
from . import interactive_figure

__all__ = ["one_neuron", "brian_trace", "neuron_callback", "neuron_panel", "spike_time_vs_weight", "gradient_callback",
           "gradient_panel"]

T_END = 0.3


def one_neuron(t_in, w, tau_s=0.13 / 4, theta=0.01, max_spikes=10, t_end=T_END, n_points=1500):
    """Closed-form spikes of one neuron (all of them, and how many fit in ``max_spikes``) and its
    potential on a grid: ``(t, u, spikes, stored)``."""
    t_in = np.asarray(t_in, dtype=np.float64)
    order = np.argsort(t_in)
    t_in, w = t_in[order], np.asarray(w, dtype=np.float64)[order]
    sim = simulate(w[None, :], t_in[None, :, None], tau_s, theta, max_spikes=64, t_max=t_end)
    spikes = sim.times[0, 0, :sim.counts[0, 0]]
    t = np.linspace(0, t_end, n_points)
    u = potential(t, t_in, w, spikes, tau_s, theta)
    return t, u, spikes, min(len(spikes), int(max_spikes))


def brian_trace(t_in, w, tau_s, theta, dt, t_end=T_END):
    """Brian2's potential of the same neuron (inputs moved to its grid, as Brian2 delivers them):
    ``(spike times, (t, u))``."""
    from ..reference import brian2_bats
    t_grid = np.round(np.asarray(t_in, dtype=float) / dt) * dt
    trains, trace = brian2_bats.run_dense(np.asarray([w], dtype=float), t_grid[None, :, None], tau_s, theta,
                                          duration=t_end, dt=dt, record_neuron=(0, 0))
    return trains[0][0], trace


def neuron_callback(t1=0.02, t2=0.05, t3=0.12, w1=1.0, w2=0.8, w3=-0.5, tau_s=0.03, theta=0.01,
                    max_spikes=10, brian=None, brian_dt=0.0):
    """``brian``: a precomputed Brian2 trace (t, u); else ``brian_dt > 0`` runs Brian2 at that step
    (about a second: the panel offers it as an option, off by default)."""
    t, u, spikes, stored = one_neuron([t1, t2, t3], [w1, w2, w3], tau_s, theta, max_spikes)
    title = f"{len(spikes)} spikes, {stored} stored (max_spikes = {max_spikes}), tau_s = {tau_s:g}, theta = {theta:g}"
    if brian is None and brian_dt:
        from ..reference import brian2_bats
        if brian2_bats.available():
            b_spikes, brian = brian_trace([t1, t2, t3], [w1, w2, w3], tau_s, theta, brian_dt)
            title += f"; Brian2: {len(b_spikes)} spikes"
        else:
            title += " (Brian2 not installed: pip install 'snnkit[brian2]')"
    return neuron_figure(t, u, theta, spikes, stored, brian=brian, title=title, brian_dt=brian_dt or None,
                         inputs=([t1, t2, t3], [w1, w2, w3]))


def neuron_panel():
    import ipywidgets as W
    f = lambda v, lo, hi, s, d: W.FloatSlider(v, min=lo, max=hi, step=s, description=d, readout_format=".3f")
    return interactive_figure(
        neuron_callback,
        t1=f(0.02, 0, 0.25, 0.005, "t1"), t2=f(0.05, 0, 0.25, 0.005, "t2"), t3=f(0.12, 0, 0.25, 0.005, "t3"),
        w1=f(1.0, -2, 3, 0.05, "w1"), w2=f(0.8, -2, 3, 0.05, "w2"), w3=f(-0.5, -2, 3, 0.05, "w3"),
        tau_s=f(0.03, 0.005, 0.1, 0.005, "tau_s"), theta=f(0.01, 0.002, 0.05, 0.001, "theta"),
        max_spikes=W.IntSlider(10, 1, 20, description="max_spikes"),
        brian_dt=W.Dropdown(options=[("off", 0.0), ("100 us (~1 s)", 1e-4), ("10 us (slower)", 1e-5)],
                            value=0.0, description="Brian2"))


def spike_time_vs_weight(t_in, w, j, k=0, tau_s=0.03, theta=0.01, span=0.4, n=81):
    """Spike k's time while weight j sweeps ``w[j] +- span``: ``(w_values, t_values)`` (+inf: no spike k)."""
    t_in = np.asarray(t_in, dtype=np.float64)
    ws = np.linspace(w[j] - span, w[j] + span, n)
    W = np.repeat(np.asarray(w, dtype=np.float64)[None, :], n, axis=0)
    W[:, j] = ws
    sim = simulate(W, t_in[None, :, None], tau_s, theta, max_spikes=k + 1, t_max=T_END)   # n neurons at once
    return ws, sim.times[0, :, k]


def gradient_callback(j=0, k=0, eps=1e-4, t_in=(0.02, 0.05, 0.12), w=(1.0, 0.8, -0.5), tau_s=0.03, theta=0.01):
    """dt_k/dw_j: exact (backward with e = one-hot on spike k) against a central finite difference."""
    from ..bats import backward
    t_in, w = np.asarray(t_in, float), np.asarray(w, float)
    sim = simulate(w[None, :], t_in[None, :, None], tau_s, theta, max_spikes=k + 1, t_max=T_END)
    if sim.counts[0, 0] <= k:
        return f"the neuron has no spike {k} with these settings"
    e = np.zeros_like(sim.times)
    e[0, 0, k] = 1.0
    dw, _ = backward(w[None, :], sim, e, tau_s, theta)
    exact = float(dw[0, j])
    vals = []
    for s in (1, -1):
        w2 = w.copy()
        w2[j] += s * eps
        s2 = simulate(w2[None, :], t_in[None, :, None], tau_s, theta, max_spikes=k + 1, t_max=T_END)
        vals.append(s2.times[0, 0, k])
    fd = (vals[0] - vals[1]) / (2 * eps)
    ws, ts = spike_time_vs_weight(t_in, w, j, k, tau_s, theta)
    return spike_time_curve(ws, ts, w[j], float(sim.times[0, 0, k]), exact, fd,
                            title=f"spike {k} against w{j + 1}: exact {exact:.6g}, finite difference (eps={eps:g}) {fd:.6g}")


def gradient_panel():
    import ipywidgets as W
    return interactive_figure(
        gradient_callback,
        j=W.IntSlider(0, 0, 2, description="weight j"), k=W.IntSlider(0, 0, 3, description="spike k"),
        eps=W.FloatLogSlider(1e-4, base=10, min=-8, max=-1, description="FD eps"))
