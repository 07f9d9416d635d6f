"""Exercise checks of notebook 03 (exact gradients through spike times, BATS).

Every truth is computed from :mod:`snnkit.bats` itself (the simulator and its backward), not typed in:

- :func:`critical_weight` (the check of this exercise is notebook 02's): the smallest weight of one input spike at t = 0 that makes the
  neuron fire. With ``a = b = w`` and ``c = theta / tau`` (tau = 2 tau_s) the threshold quadratic
  ``c z^2 - b z + a = 0`` has a real root iff ``b^2 - 4ac = w (w - 4 theta / tau) >= 0``, so
  ``w* = 4 theta / tau = 2 theta / tau_s``; the check finds it by bisection on the simulator.
- :func:`check_grazing_exponent`: how ``dt/dw`` grows as ``w -> w*`` from above. At the root
  ``dt/dw = (tau / x) (1/z - 1)`` with ``x = sqrt(w (w - w*))``, so ``|dt/dw| ~ (w - w*)^(-1/2)``;
  the check fits the exponent to the backward's gradients.
- :func:`check_gradient_sign`: the sign of ``dt_k/dw_j`` for an input j before spike k. Directly,
  ``dt_k/dw_j = (tau / x_k) z_j (z_j / z_k - 1) < 0`` (z_j < z_k); through an earlier spike m the
  reset adds ``dt_k/dt_m * dt_m/dw_j`` with ``dt_k/dt_m > 0`` and ``dt_m/dw_j < 0``: negative again,
  whatever the sign of w_j. The check computes the signs on random neurons.
"""
from __future__ import annotations

import numpy as np

from . import unanswered, verdict

TAU_S, THETA = 0.03, 0.01          # the neuron of notebook 03's first section


def _as_float(answer, name):
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: the answer is one number; got {answer!r}") from None


def _fires(w, tau_s, theta):
    from ..bats.simulate import simulate
    sim = simulate(np.array([[w]], float), np.zeros((1, 1, 1)), tau_s, theta, max_spikes=1, t_max=np.inf)
    return bool(sim.counts[0, 0] > 0)


def critical_weight(tau_s=TAU_S, theta=THETA, iterations=60) -> float:
    """The smallest weight of one input spike at t = 0 for which the simulator reports a spike
    (bisection; the closed form is 2 theta / tau_s)."""
    lo, hi = 0.0, 1.0
    while not _fires(hi, tau_s, theta):
        lo, hi = hi, 2 * hi
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _fires(mid, tau_s, theta) else (mid, hi)
    return hi


def spike_time_gradient(w, tau_s=TAU_S, theta=THETA) -> float:
    """dt/dw of the first spike of one neuron driven by one input spike at t = 0 with weight w
    (snnkit.bats.backward with the error one-hot on that spike); nan when it does not fire."""
    from ..bats import backward
    from ..bats.simulate import simulate
    W, t_in = np.array([[w]], float), np.zeros((1, 1, 1))
    sim = simulate(W, t_in, tau_s, theta, max_spikes=1, t_max=np.inf)
    if sim.counts[0, 0] == 0:
        return float("nan")
    e = np.zeros_like(sim.times)
    e[0, 0, 0] = 1.0
    dw, _ = backward(W, sim, e, tau_s, theta, need_input_grad=False)
    return float(dw[0, 0])


def grazing_exponent(tau_s=TAU_S, theta=THETA, eps=np.logspace(-2, -6, 9)) -> float:
    """Slope of log|dt/dw| against log(w - w*) for w = w* (1 + eps) (a least-squares line)."""
    ws = critical_weight(tau_s, theta)
    g = np.array([spike_time_gradient(ws * (1 + e), tau_s, theta) for e in eps])
    return float(np.polyfit(np.log(ws * eps), np.log(np.abs(g)), 1)[0])


def gradient_signs(n_neurons=200, seed=0, tau_s=TAU_S, theta=THETA) -> np.ndarray:
    """Signs of dt_k/dw_j over every (spike k, input j before it) of random multi-spike neurons
    with excitatory and inhibitory inputs (the exact backward of snnkit.bats)."""
    from ..bats import backward
    from ..bats.simulate import simulate
    rng = np.random.default_rng(seed)
    n_in, S = 6, 6
    W = rng.uniform(-0.6, 1.5, (n_neurons, n_in))
    t_in = np.sort(rng.uniform(0, 0.1, (1, n_in, 1)), axis=1)
    sim = simulate(W, t_in, tau_s, theta, max_spikes=S, t_max=0.3)
    signs = []
    for k in range(S):
        has = sim.counts[0] > k
        if not has.any():
            break
        e = np.zeros_like(sim.times)
        e[0, has, k] = 1.0
        # one spike per neuron carries the error: row n of dW is dt_k/dw_{n, j} of neuron n
        dw, _ = backward(W, sim, e, tau_s, theta, need_input_grad=False)
        before = t_in[0, :, 0][None, :] < sim.times[0, :, k][:, None]          # [n, j]
        signs.append(np.sign(dw[has][before[has]]))
    return np.concatenate(signs)


def check_grazing_exponent(answer, tau_s=TAU_S, theta=THETA):
    """p in |dt/dw| ~ (w - w*)^p as w -> w* from above."""
    name = "grazing exponent"
    if unanswered(answer):
        return verdict(name, answer, False, "", "")
    truth = grazing_exponent(tau_s, theta)
    p = _as_float(answer, name)
    return verdict(name, answer, abs(p - truth) < 0.05,
                   right=f"the fitted slope is {truth:.3f}: x = sqrt(b^2 - 4ac) = sqrt(w (w - w*)) shrinks like "
                         "(w - w*)^(1/2) and dt/dw = (tau/x)(1/z - 1), so the gradient blows up like "
                         "(w - w*)^(-1/2) at the grazing point.",
                   wrong="fit a straight line to log|dt/dw| against log(w - w*) (np.polyfit(..., 1)[0]); "
                         "the gradient grows as w approaches w*, so the slope is negative. Which power of "
                         "(w - w*) does x = sqrt(b^2 - 4ac) have?")


def check_gradient_sign(answer):
    """The sign (+1 or -1) of dt_k/dw_j for an input j that arrives before spike k."""
    name = "sign of dt/dw"
    if unanswered(answer):
        return verdict(name, answer, False, "", "")
    signs = gradient_signs()
    truth = float(np.sign(signs.sum()))
    consistent = bool((signs == truth).all())
    ok = consistent and np.sign(_as_float(answer, name)) == truth
    return verdict(name, answer, ok,
                   right=f"all {signs.size} (k, j) pairs of 200 random neurons (excitatory and inhibitory "
                         f"inputs) have dt_k/dw_j < 0: a larger weight, whatever its sign, adds charge and "
                         "the spike comes earlier; through the reset, an earlier spike m also pulls spike k earlier.",
                   wrong="look at dt_k/dw_j = (tau/x_k) z_j (z_j/z_k - 1): which factor has a sign, given "
                         "t_j < t_k? Then check with sb.backward on the neuron above.")
