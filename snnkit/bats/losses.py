"""Losses on output spike trains, their errors dL/dt, and predictions.

TTFS softmax cross-entropy (time to first spike), over B samples::

    p = softmax(-t_first / tau_loss),   L = -(1/B) sum_b log p[b, y_b],
    dL/dt_first = (onehot(y) - p) / (tau_loss B)      (only slot 0 of each neuron gets an error)

The prediction is the earliest neuron; it reads slot 0 of each neuron, so it is right for any
``max_spikes`` (the public implementation's prediction went wrong for S > 1). A silent neuron has no
spike to move: it counts as firing at ``t_silent`` in the softmax and gets no error. With
``t_silent=None`` that is the latest first spike of its sample plus ``tau_loss`` (all silent: 0).

Spike-count loss::

    L = (1/B) sum_b 1/2 sum_n (target_n - n_spikes)^2,  target = target_true for the label else target_false
    dL/dt_k = (target_n - n_spikes) / B  on every stored spike k of neuron n

A positive error (too few spikes) makes gradient descent move the neuron's spikes earlier, where more
of them fit. ``n_spikes`` includes overflow spikes. The prediction is the neuron with the most spikes,
ties broken by the earliest first spike. A sample whose output neurons are all silent is predicted
as -1 (never correct).

Speed (small batches are bound by launches and host syncs, not arithmetic): label ranges are checked
on the host when the labels are NumPy; on the GPU the count loss is one fused kernel
(``kernels/bats_loss.cu``) plus a sum, and ``value_and_grad`` leaves the loss on the device so that a
training step needs no host sync before its backward.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, xp_of
from ..spikes import SpikeTrains

__all__ = ["TTFSCrossEntropy", "SpikeCountLoss", "predict_first", "predict_count"]


def _check(out, labels):
    """Checks ``out`` and ``labels``; returns ``xp, labels (int64, on out's device), B, C``.

    The labels go through :func:`snnkit.checks.labels`, the one label check of every loss; its range
    check runs where the labels live: on the host for NumPy labels (the Trainer and the benchmark
    draw them from NumPy data: free), else one fused reduction (one device sync)."""
    if not isinstance(out, SpikeTrains):
        raise TypeError(f"the loss expects the network's output SpikeTrains; got {type(out).__name__}")
    xp = xp_of(out.times)
    if getattr(out.times, "ndim", 0) != 3:
        raise ValueError(f"out.times must be [batch, neurons, slots]; got shape {tuple(out.times.shape)}")
    B, C = out.times.shape[:2]
    if B < 1 or C < 1:
        raise ValueError(f"the loss needs a batch of at least one sample and one output neuron; got out.times "
                         f"of shape {tuple(out.times.shape)}")
    y = checks.labels(labels, B, C)
    return xp, xp.asarray(y), B, C


def predict_first(out: SpikeTrains):
    """Earliest first spike; -1 where every output neuron is silent."""
    xp = xp_of(out.times)
    t0 = out.times[:, :, 0]
    return xp.where(xp.isfinite(t0).any(axis=1), xp.argmin(t0, axis=1), -1)


def predict_count(out: SpikeTrains):
    """Most spikes, ties broken by the earliest first spike; -1 where all are silent."""
    xp = xp_of(out.times)
    n = out.counts + (out.overflow if out.overflow is not None else 0)
    best = n == n.max(axis=1, keepdims=True)
    t0 = xp.where(best, out.times[:, :, 0], xp.inf)
    return xp.where(n.max(axis=1) > 0, xp.argmin(t0, axis=1), -1)


class TTFSCrossEntropy:
    def __init__(self, tau_loss=0.005, t_silent=None):
        self.tau_loss = checks.positive("tau_loss", tau_loss, "It is the softmax temperature, in time units.")
        self.t_silent = None if t_silent is None else checks.number(
            "t_silent", t_silent, "It is the time a silent neuron counts as firing at (None: after the latest).")

    def __call__(self, out: SpikeTrains, labels):
        value, grad = self.value_and_grad(out, labels)
        return float(value), grad

    def value_and_grad(self, out: SpikeTrains, labels):
        """``(loss, dL/dt)`` with the loss left as a 0-d array on the output's device (no host sync)."""
        xp, labels, B, C = _check(out, labels)
        t0 = out.times[:, :, 0]
        fired = xp.isfinite(t0)
        if self.t_silent is None:
            latest = xp.where(fired, t0, -xp.inf).max(axis=1, keepdims=True)
            fill = xp.where(xp.isfinite(latest), latest + self.tau_loss, 0)
        else:
            fill = self.t_silent
        t = xp.where(fired, t0, fill)
        logits = -t / self.tau_loss
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - xp.log(xp.exp(logits).sum(axis=1, keepdims=True))
        rows = xp.arange(B)
        loss = -logp[rows, labels].mean() if B else xp.zeros(())
        onehot = xp.zeros_like(t)
        onehot[rows, labels] = 1
        g0 = xp.where(fired, (onehot - xp.exp(logp)) / (self.tau_loss * max(B, 1)), 0)
        grad = xp.zeros_like(out.times)
        grad[:, :, 0] = g0
        return loss, grad

    def predict(self, out: SpikeTrains):
        return predict_first(out)

    def __repr__(self):
        return f"TTFSCrossEntropy(tau_loss={self.tau_loss})"


class SpikeCountLoss:
    def __init__(self, target_true=15, target_false=3):
        self.target_true = checks.nonnegative("target_true", target_true, "It is a number of spikes.")
        self.target_false = checks.nonnegative("target_false", target_false, "It is a number of spikes.")

    def __call__(self, out: SpikeTrains, labels):
        value, grad = self.value_and_grad(out, labels)
        return float(value), grad

    def value_and_grad(self, out: SpikeTrains, labels):
        """``(loss, dL/dt)`` with the loss left as a 0-d array on the output's device.

        ``float(loss)`` waits for the GPU; a training loop that only logs the loss can call it once
        at the end of the step, after the backward and the update are queued (``__call__`` returns
        the float at once, for the Trainer)."""
        xp, labels, B, C = _check(out, labels)
        if is_cupy_array(out.times):
            return self._cuda(out, labels, B)
        return self._numpy(xp, out, labels, B)

    def _numpy(self, xp, out, labels, B):
        n = (out.counts + (out.overflow if out.overflow is not None else 0)).astype(out.times.dtype)
        target = xp.full(n.shape, self.target_false, dtype=n.dtype)
        target[xp.arange(B), labels] = self.target_true
        err = target - n
        loss = 0.5 * (err ** 2).sum() / max(B, 1)
        stored = xp.arange(out.times.shape[2])[None, None, :] < out.counts[:, :, None]
        grad = xp.where(stored, err[:, :, None] / max(B, 1), 0).astype(out.times.dtype)
        return loss, grad

    def _cuda(self, out, labels, B):
        """``kernels/bats_loss.cu``: one launch for the error and the gradient, one sum."""
        import cupy as cp
        from ..kernels import function, launch_1d
        times = out.times
        f = times.dtype.type
        _, N, S = times.shape
        counts = cp.ascontiguousarray(out.counts, dtype=cp.int32)
        has_over = out.overflow is not None
        over = cp.ascontiguousarray(out.overflow, dtype=cp.int32) if has_over else counts
        grad = cp.empty(times.shape, times.dtype)
        sq = cp.empty((B, N), times.dtype)
        launch_1d(function("bats_loss.cu", "bats_count_loss", times.dtype), B * N * S,
                  (counts, over, np.int32(has_over), cp.ascontiguousarray(labels), np.int64(B), np.int32(N),
                   np.int32(S), f(self.target_true), f(self.target_false), grad, sq))
        return sq.sum(), grad

    def predict(self, out: SpikeTrains):
        return predict_count(out)

    def __repr__(self):
        return f"SpikeCountLoss(target_true={self.target_true:g}, target_false={self.target_false:g})"
