"""Exercises of notebook 00 (welcome: pixels to spikes). Each check computes the truth with the
encoders of :mod:`snnkit.datasets`."""
from __future__ import annotations

import math

import numpy as np

from . import unanswered, number, verdict




def _log_latency_step(x, tau, threshold, n_steps):
    """The step at which :func:`snnkit.datasets.log_latency` makes a pixel of intensity x spike
    (None: silent within n_steps)."""
    from ..backend import to_numpy
    from ..datasets import log_latency
    r = to_numpy(log_latency(np.array([[float(x)]]), n_steps=int(n_steps), tau=tau, threshold=threshold))[0, :, 0]
    hit = np.flatnonzero(r > 0)
    return int(hit[0]) if hit.size else None


def check_log_latency_step(step, x=0.6, tau=20.0, threshold=0.2):
    """Step of the log-latency spike of one pixel of intensity ``x``."""
    truth = _log_latency_step(x, tau, threshold, 10_000)
    v = None if unanswered(step) else number(step)
    ok = v is not None and v == truth
    hint = (f"Evaluate tau ln(x / (x - threshold)) for x = {x:g}, then keep only the whole number of steps "
            "(the encoder truncates: int(...)).")
    if v is not None and truth is not None and v == truth + 1:
        hint = "You rounded up; the encoder truncates to the whole steps already elapsed (int(...))."
    return verdict("log_latency_step", step, ok,
                   right=(f"tau ln(x/(x-threshold)) = {tau * math.log(x / (x - threshold)):.3f}, truncated to step "
                          f"{truth}: the time a leaky integrator driven by x needs to reach the threshold."),
                   wrong=hint)


def check_cutoff_intensity(x_min, n_steps=20, tau=20.0, threshold=0.2):
    """The intensity below which a pixel is silent in a log-latency raster of ``n_steps`` steps
    (found here by bisection on the encoder itself)."""
    lo, hi = threshold, 1.0                               # lo: silent, hi: spikes (if anything does)
    if _log_latency_step(hi, tau, threshold, n_steps) is None:
        truth = None
    else:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _log_latency_step(mid, tau, threshold, n_steps) is None:
                lo = mid
            else:
                hi = mid
        truth = hi
    v = None if unanswered(x_min) else number(x_min)
    ok = v is not None and truth is not None and abs(v - truth) <= 2e-3
    hint = ("A pixel is kept if its step tau ln(x/(x - threshold)) is below n_steps. Solve "
            "tau ln(x/(x - threshold)) = n_steps for x.")
    if v is not None and abs(v - threshold) < 2e-3:
        hint = ("Pixels just above the threshold do spike, but very late: tau ln(x/(x-threshold)) grows without "
                f"bound as x -> threshold, past the {n_steps} steps of the raster. " + hint)
    right = (f"x > threshold / (1 - exp(-n_steps/tau)) = {truth:.4f}: below it, the spike would come after "
             f"step {n_steps - 1} and is dropped." if truth is not None else "")
    return verdict("cutoff_intensity", x_min, ok, right=right, wrong=hint)


def check_poisson_spike_count(count, x, n_steps=20, max_prob=0.5):
    """Expected number of spikes of :func:`snnkit.datasets.poisson` for one image ``x`` (features in
    [0, 1]): each of the ``n_steps`` steps fires pixel i with probability ``max_prob * x_i``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    truth = float(n_steps * max_prob * x.sum())
    v = None if unanswered(count) else number(count)
    ok = v is not None and abs(v - truth) <= max(0.5, 0.01 * truth)
    hint = ("Expected spikes = sum over steps and pixels of the spike probability. What is the probability "
            "of pixel i at one step?")
    if v is not None and abs(v - x.sum() * n_steps) <= max(0.5, 0.01 * truth):
        hint = "Close: the probability per step is max_prob * x_i, not x_i."
    return verdict("poisson_spike_count", count, ok,
                   right=(f"n_steps * max_prob * sum(x) = {truth:.1f} expected spikes: a rate code pays "
                          "in spikes for every bit of intensity."),
                   wrong=hint)
