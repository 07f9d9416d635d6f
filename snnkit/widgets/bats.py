"""Panels of the BATS notebooks. Each callback is a plain function returning a figure (or text);
the notebooks call them directly too (headless), the panels only add sliders."""
from __future__ import annotations

import numpy as np

from ..bats import simulate
from ..bats.neuron import potential
from ..viz.bats import message_figure, neuron_figure, spike_time_curve
from . import interactive_figure

__all__ = ["one_neuron", "brian_trace", "neuron_callback", "neuron_panel", "spike_time_vs_weight", "gradient_callback",
           "gradient_panel"]

T_END = 0.3
GRAD_T_IN, GRAD_W = (0.02, 0.05, 0.12), (1.0, 0.8, -0.5)      # the neuron of the gradient panel


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


def gradient_callback(j=0, k=0, eps=1e-4, t_in=GRAD_T_IN, w=GRAD_W, tau_s=0.03, theta=0.01):
    """dt_k/dw_j: exact (backward with e = one-hot on spike k) against a central finite difference.

    Always returns a figure: where the neuron has no spike k, a figure that says so (the spike
    index runs 0 .. n_spikes - 1); where spike k appears or vanishes within ``w_j +- eps``, the
    finite difference does not exist and the title says so."""
    from ..bats import backward
    t_in, w = np.asarray(t_in, float), np.asarray(w, float)
    j, k = int(j), int(k)
    if not 0 <= j < len(w):
        raise ValueError(f"j must be an input index in 0..{len(w) - 1}; got {j}")
    sim = simulate(w[None, :], t_in[None, :, None], tau_s, theta, max_spikes=k + 1, t_max=T_END)
    n = int(sim.counts[0, 0] + sim.overflow[0, 0])
    if n <= k:
        return message_figure(f"No spike k = {k}: this neuron fires {n} spike{'s' * (n != 1)} "
                              f"(k = 0..{n - 1}). Pick a smaller k.", title=f"spike {k} against w{j + 1}")
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
    if np.isfinite(vals).all():
        fd, fd_text = (vals[0] - vals[1]) / (2 * eps), None
    else:                                         # the spike vanishes on one side: no secant
        fd, fd_text = None, f"no finite difference: spike {k} vanishes within w{j + 1} +- {eps:g}"
    ws, ts = spike_time_vs_weight(t_in, w, j, k, tau_s, theta)
    title = (f"spike {k} against w{j + 1}: exact {exact:.6g}, "
             + (fd_text or f"finite difference (eps={eps:g}) {fd:.6g}"))
    return spike_time_curve(ws, ts, w[j], float(sim.times[0, 0, k]), exact, fd, title=title)


def gradient_panel(t_in=GRAD_T_IN, w=GRAD_W, tau_s=0.03, theta=0.01):
    """Sliders for the weight j, the spike k and the finite-difference step of :func:`gradient_callback`.
    The spike slider runs over the spikes this neuron has (k = 0 .. n_spikes - 1)."""
    import ipywidgets as W
    from functools import partial
    _, _, spikes, _ = one_neuron(t_in, w, tau_s, theta)
    if len(spikes) == 0:
        raise ValueError("gradient_panel: the neuron does not spike with these t_in, w, tau_s, theta; "
                         "raise a weight or lower theta")
    cb = partial(gradient_callback, t_in=t_in, w=w, tau_s=tau_s, theta=theta)
    return interactive_figure(
        cb,
        j=W.IntSlider(0, 0, len(w) - 1, description="weight j"),
        k=W.IntSlider(0, 0, len(spikes) - 1, description="spike k"),
        eps=W.FloatLogSlider(1e-4, base=10, min=-8, max=-1, step=0.5, description="FD eps"))
