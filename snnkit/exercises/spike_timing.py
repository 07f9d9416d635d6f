"""Exercises of notebook 02 (spike timing, BATS). Each check simulates with :func:`snnkit.bats.simulate`."""
from __future__ import annotations

import math

import numpy as np

from . import unanswered, number, verdict




def _spikes(t_in, w, tau_s, theta, t_max=float("inf")):
    from ..bats import simulate
    t_in = np.asarray(t_in, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    order = np.argsort(t_in)
    sim = simulate(w[order][None, :], t_in[order][None, :, None], tau_s, theta, max_spikes=64, t_max=t_max)
    return np.asarray(sim.times[0, 0, :int(sim.counts[0, 0])])


def check_spike_time(t_star, t_in=(0.01, 0.02), w=(0.5, 0.6), tau_s=0.03, theta=0.01):
    """The first spike time of one neuron computed by hand from the closed form."""
    s = _spikes(t_in, w, tau_s, theta)
    truth = float(s[0]) if s.size else None
    v = None if unanswered(t_star) else number(t_star)
    ok = v is not None and truth is not None and abs(v - truth) <= 1e-6 + 1e-5 * truth
    tau = 2 * tau_s
    a = sum(wj * math.exp(tj / tau_s) for tj, wj in zip(t_in, w))
    b = sum(wj * math.exp(tj / tau) for tj, wj in zip(t_in, w))
    c = theta / tau
    hint = ("a and b are sums over *all* inputs before the spike: a = sum w_j exp(t_j/tau_s), "
            "b = sum w_j exp(t_j/tau); c = theta/tau with tau = 2 tau_s; then z* = 2a/(b + x), t* = tau ln z*.")
    if v is not None and b * b - 4 * a * c >= 0:
        late = tau * math.log((b + math.sqrt(b * b - 4 * a * c)) / (2 * c))
        if abs(v - late) <= 1e-6 + 1e-5 * late:
            hint = "That is the other root: the time at which u falls back below theta. The spike is the earlier root."
    return verdict("spike_time", t_star, ok,
                   right=f"t* = {truth:.6f} s, as snnkit.bats.simulate finds." if truth is not None else "",
                   wrong=hint)


def check_critical_weight(w_min, tau_s=0.03, theta=0.01):
    """The smallest weight of a single input spike that makes the neuron spike, found here by
    bisection on :func:`snnkit.bats.simulate`."""
    lo, hi = 0.0, 1.0
    while _spikes([0.0], [hi], tau_s, theta).size == 0:
        hi *= 2
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _spikes([0.0], [mid], tau_s, theta).size else (mid, hi)
    truth = hi
    v = None if unanswered(w_min) else number(w_min)
    ok = v is not None and abs(v - truth) <= 1e-3 * truth
    hint = ("With one input at t = 0, a = b = w and c = theta/tau. The neuron spikes when the discriminant "
            "b^2 - 4ac is not negative: solve it for w.")
    if v is not None and abs(v - theta / (2 * tau_s)) <= 1e-3 * truth:
        hint = "That is c = theta/tau itself; the condition is b^2 >= 4ac with a = b = w."
    return verdict("critical_weight", w_min, ok,
                   right=(f"w >= 4 theta / tau = {truth:.4f}: below it the peak of u, w tau / 4, stays under theta "
                          "and b^2 - 4ac < 0 (no real root, no spike)."),
                   wrong=hint)


def check_three_spikes(w, t_in=(0.02, 0.10), tau_s=0.03, theta=0.01):
    """Weights ``w`` (one per input of ``t_in``) that make the neuron fire exactly three times
    strictly between the two inputs."""
    if unanswered(w):
        return verdict("three_spikes", w, False, "", "")
    try:
        w_arr = np.asarray(w, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        w_arr = None
    if w_arr is None or w_arr.size != len(t_in) or not np.all(np.isfinite(w_arr)):
        return verdict("three_spikes", w, False, "", f"Give one finite weight per input: {len(t_in)} numbers.")
    s = _spikes(t_in, w_arr, tau_s, theta)
    between = s[(s > t_in[0]) & (s < t_in[1])]
    n = between.size
    hint = (f"{n} spike(s) between the inputs. " +
            ("More drive from the first input: each spike lowers b by (theta/tau) z*, so a bigger w1 leaves room "
             "for more resets before u sinks." if n < 3 else
             "Too much drive: lower the first weight (the second input comes too late to matter here)."))
    return verdict("three_spikes", w, n == 3,
                   right=f"spikes at {np.round(between, 4).tolist()} s: three between t = {t_in[0]} s and {t_in[1]} s.",
                   wrong=hint)
