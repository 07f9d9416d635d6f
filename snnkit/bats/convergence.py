"""The convergence experiment of Bacho & Chu: does a single-spike (TTFS) or a multi-spike (count)
neuron layer learn a tiny task from a given initial weight distribution?

One 4 -> 2 layer (tau_s = 1, theta = 1, t_max = 10), two samples with input spikes at [0, 0, 1, 2]
(class 0) and [0, 0, 2, 1] (class 1); plain gradient descent (lr 0.1, 50 epochs) from weights
N(mean, std). A run converged when both samples are classified correctly at the end. The grid of
(mean, std) cells times ``repeats`` runs is simulated at once: output neurons of a dense layer are
independent, so every run is a pair of neurons of one wide layer (weight [cells * repeats * 2, 4]).

    convergence_grid(means, stds, repeats=100, mode="count"|"ttfs", epochs=50, lr=0.1, seed=0)
        -> rate [len(means), len(stds)]
"""
from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .backward import backward
from .losses import SpikeCountLoss, TTFSCrossEntropy
from .simulate import simulate

__all__ = ["convergence_grid", "TOY_INPUTS", "TOY_LABELS"]

TOY_INPUTS = np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 1.0]])[:, :, None]     # [2 samples, 4, 1]
TOY_LABELS = np.array([0, 1])
SETTINGS = {"count": dict(max_spikes=10, loss=lambda: SpikeCountLoss(10, 0)),
            "ttfs": dict(max_spikes=1, loss=lambda: TTFSCrossEntropy(0.1))}


def _per_run(times, counts, overflow, M):
    """[2, M*2, S] outputs of the wide layer -> [M*2 runs-and-samples, 2 neurons, S]."""
    S = times.shape[2]
    f = lambda a, s: a.reshape(2, M, 2, *s).swapaxes(0, 1).reshape(M * 2, 2, *s)
    return SpikeTrains(f(times, (S,)), f(counts, ()), f(overflow, ()))


def convergence_grid(means, stds, repeats=100, mode="count", epochs=50, lr=0.1, seed=0,
                     tau_s=1.0, theta=1.0, t_max=10.0):
    if mode not in SETTINGS:
        raise ValueError(f"mode must be 'count' (multi-spike) or 'ttfs' (single-spike); got {mode!r}")
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
    for _ in range(epochs):
        sim = simulate(w, TOY_INPUTS, tau_s, theta, max_spikes=S, t_max=t_max)
        out = _per_run(sim.times, sim.counts, sim.overflow, M)
        _, g = loss(out, labels)
        g = g * M                                          # each run: the mean over its own 2 samples
        g = g.reshape(M, 2, 2, S).swapaxes(0, 1).reshape(2, M * 2, S)
        dw, _ = backward(w, sim, g, tau_s, theta, need_input_grad=False)
        w -= lr * dw
    sim = simulate(w, TOY_INPUTS, tau_s, theta, max_spikes=S, t_max=t_max)
    pred = loss.predict(_per_run(sim.times, sim.counts, sim.overflow, M)).reshape(M, 2)
    ok = (pred == TOY_LABELS[None, :]).all(axis=1)
    return ok.reshape(len(means), len(stds), repeats).mean(axis=2)
