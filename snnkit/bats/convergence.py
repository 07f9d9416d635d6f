"""The convergence experiment of Bacho & Chu (2023): does a single-spike (TTFS) or a multi-spike
(count) neuron layer learn a tiny task from a given initial weight distribution?

One 4 -> 2 layer (tau_s = 1, theta = 1, t_max = 10), two samples with input spikes at [0, 0, 1, 2]
(class 0) and [0, 0, 2, 1] (class 1); plain gradient descent (lr 0.1, 50 epochs) from weights
N(mean, std). A run converged when both samples are classified correctly at the end. The grid of
(mean, std) cells times ``repeats`` runs is simulated at once: output neurons of a dense layer are
independent, so every run is a pair of neurons of one wide layer (weight [cells * repeats * 2, 4]).

    convergence_grid(means, stds, repeats=100, mode="count"|"ttfs", epochs=50, lr=0.1, seed=0)
        -> rate [len(means), len(stds)]
    convergence_runs(...)  (same arguments)
        -> {"converged", "dead_start"}: [len(means), len(stds), repeats] bool per run

A run *starts dead* when one of its output neurons fires on neither sample with the initial
weights. Such a neuron never learns: dL/dw of a neuron reaches it only through its own spike times
(dt_k/dw), and it has none, so its gradient is exactly 0 at every epoch and it stays silent. A
silent neuron is never the prediction (TTFS: the earliest first spike; count: the most spikes, and a
sample with all neurons silent is predicted -1), so the sample of its class is never classified
correctly: a run that starts dead cannot converge, in either mode.
"""
from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .backward import backward
from .losses import SpikeCountLoss, TTFSCrossEntropy
from .simulate import simulate

__all__ = ["convergence_grid", "convergence_runs", "TOY_INPUTS", "TOY_LABELS"]

TOY_INPUTS = np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 1.0]])[:, :, None]     # [2 samples, 4, 1]
TOY_LABELS = np.array([0, 1])
SETTINGS = {"count": dict(max_spikes=10, loss=lambda: SpikeCountLoss(10, 0)),
            "ttfs": dict(max_spikes=1, loss=lambda: TTFSCrossEntropy(0.1))}


def _per_run(times, counts, overflow, M):
    """[2, M*2, S] outputs of the wide layer -> [M*2 runs-and-samples, 2 neurons, S]."""
    S = times.shape[2]
    f = lambda a, s: a.reshape(2, M, 2, *s).swapaxes(0, 1).reshape(M * 2, 2, *s)
    return SpikeTrains(f(times, (S,)), f(counts, ()), f(overflow, ()))


def convergence_runs(means, stds, repeats=100, mode="count", epochs=50, lr=0.1, seed=0,
                     tau_s=1.0, theta=1.0, t_max=10.0) -> dict:
    """Per run: whether it converged, and whether it started dead (see the module docstring)."""
    if mode not in SETTINGS:
        raise ValueError(f"mode must be 'count' (multi-spike) or 'ttfs' (single-spike); got {mode!r}")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1 (runs per (mean, std) cell); got {repeats!r}")
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    rng = np.random.default_rng(seed)
    C = len(means) * len(stds)
    M = C * int(repeats)                                   # independent runs
    mu = np.repeat(np.repeat(means, len(stds)), repeats)  # cell-major, then repeats
    sd = np.repeat(np.tile(stds, len(means)), repeats)
    w = (mu[:, None, None] + sd[:, None, None] * rng.standard_normal((M, 2, 4))).reshape(M * 2, 4)
    S = SETTINGS[mode]["max_spikes"]
    loss = SETTINGS[mode]["loss"]()
    labels = np.tile(TOY_LABELS, M)                        # per (run, sample), run-major
    dead = None
    for _ in range(epochs):
        sim = simulate(w, TOY_INPUTS, tau_s, theta, max_spikes=S, t_max=t_max)
        if dead is None:                                   # counts [2 samples, M*2 neurons]
            fired = (sim.counts + sim.overflow).reshape(2, M, 2).sum(axis=0)
            dead = (fired == 0).any(axis=1)
        out = _per_run(sim.times, sim.counts, sim.overflow, M)
        _, g = loss(out, labels)
        g = g * M                                          # each run: the mean over its own 2 samples
        g = g.reshape(M, 2, 2, S).swapaxes(0, 1).reshape(2, M * 2, S)
        dw, _ = backward(w, sim, g, tau_s, theta, need_input_grad=False)
        w -= lr * dw
    sim = simulate(w, TOY_INPUTS, tau_s, theta, max_spikes=S, t_max=t_max)
    if dead is None:                                       # epochs = 0
        dead = ((sim.counts + sim.overflow).reshape(2, M, 2).sum(axis=0) == 0).any(axis=1)
    pred = loss.predict(_per_run(sim.times, sim.counts, sim.overflow, M)).reshape(M, 2)
    ok = (pred == TOY_LABELS[None, :]).all(axis=1)
    shape = (len(means), len(stds), int(repeats))
    return {"converged": ok.reshape(shape), "dead_start": dead.reshape(shape)}


def convergence_grid(means, stds, repeats=100, mode="count", epochs=50, lr=0.1, seed=0,
                     tau_s=1.0, theta=1.0, t_max=10.0):
    """Share of the ``repeats`` runs of each (mean, std) cell that converged: [len(means), len(stds)]."""
    runs = convergence_runs(means, stds, repeats, mode, epochs, lr, seed, tau_s, theta, t_max)
    return runs["converged"].mean(axis=2)
