"""Exercises of notebook 01 (one LIF, three clocks). Each check computes the truth with snnkit."""
from __future__ import annotations


from . import unanswered, number, verdict




def check_stbp_time_constant(tau_ms, dt_ms=1.0):
    """The membrane time constant (ms) behind STBP's decay factor (``snnkit.stbp.STBP.decay``,
    0.25) at a step of ``dt_ms``: ``tau = -dt / ln(beta)``."""
    from ..neurons import time_constant
    from ..stbp.lif import STBP
    beta = STBP.decay
    truth = time_constant(beta, dt_ms)
    v = None if unanswered(tau_ms) else number(tau_ms)
    ok = v is not None and abs(v - truth) <= 0.01 * truth
    hint = "Invert beta = exp(-dt/tau): take the natural log of both sides, then solve for tau (in ms)."
    if v is not None and abs(v - dt_ms / (1 - beta)) < 0.01 * dt_ms / (1 - beta):
        hint = ("That inverts Euler's factor 1 - dt/tau, which is only good for dt << tau; here beta is far "
                "from 1, so use the exact beta = exp(-dt/tau).")
    elif v is not None and abs(v - dt_ms / beta) < 1e-6:
        hint = "beta is not dt/tau. " + hint
    return verdict("stbp_time_constant", tau_ms, ok,
                   right=(f"beta = {beta:g} at dt = {dt_ms:g} ms means tau = -dt/ln(beta) = {truth:.4f} ms: the "
                          "potential keeps only a quarter of itself per step, a very leaky neuron."),
                   wrong=hint)


def check_first_spike_step(step, current=0.08, beta=0.95):
    """First spike step (0-based) of an S3GD neuron (threshold 1) under a constant input ``current``
    per step, against :func:`snnkit.neurons.first_spike_step` (which runs ``lif_simulate``)."""
    from ..neurons import first_spike_step
    truth = first_spike_step(current, beta)
    ok = not unanswered(step) and number(step) is not None and float(step) == truth
    hint = ("Write V[t] = I (1 - beta^(t+1)) / (1 - beta), ask for V[t] >= 1, and solve for t with logs "
            "(ln beta < 0 flips the inequality); then take the first whole step.")
    if ok is False and number(step) is not None and truth is not None:
        if float(step) == truth + 1:
            hint = "One step too late: step 0 already holds V[0] = I (the sum has t + 1 terms)."
        elif float(step) == truth - 1:
            hint = "One step too early: V[t] has t + 1 terms; round the solved t + 1 up, then subtract 1."
    return verdict("first_spike_step", step, ok,
                   right=(f"V first reaches the threshold at step {truth}: the closed form predicts what "
                          "lif_simulate does."),
                   wrong=hint)
