"""Loss of S3GD: log-softmax NLL on the readout's logits plus an activity regularizer on both
hidden layers (per sample, averaged over the batch; N neurons, c[b,j] = sum_t S[b,t,j]):

    upper:  lambda_up  * relu(sum_j c[b,j] / N - f_up)
    lower:  lambda_low * sum_j relu(f_low - c[b,j])^2 / N

Their gradient w.r.t. S[b,t,j] does not depend on t: r[b,j] = dL/dc[b,j], which the LIF layers
add to dL/dS at every step (``grad_const``). In the sparse backward it, too, only reaches the
active entries — so a layer with no entry near threshold gets no gradient at all, not even the
lower regularizer's push to fire (the "dead network" failure mode; see network.DeadLayerGuard).
"""
from __future__ import annotations

from .. import checks
from ..backend import is_cupy_array, xp_of
from ..nn.losses import SoftmaxCrossEntropy


class ActivityRegularizer:
    def __init__(self, lambda_up=0.06, f_up=1.0, lambda_low=100.0, f_low=1e-3):
        self.lambda_up = checks.nonnegative("lambda_up", lambda_up)
        self.lambda_low = checks.nonnegative("lambda_low", lambda_low)
        self.f_up = checks.nonnegative("f_up", f_up, "It is a number of spikes per neuron.")
        self.f_low = checks.nonnegative("f_low", f_low, "It is a number of spikes per neuron.")

    def __repr__(self):
        return (f"ActivityRegularizer(lambda_up={self.lambda_up}, f_up={self.f_up}, "
                f"lambda_low={self.lambda_low}, f_low={self.f_low})")

    def value(self, S) -> float:
        return self.value_from_counts(S.sum(axis=1))

    def value_from_counts(self, c) -> float:
        """The same from the spike counts c [B, N] (a network keeps them from its forward)."""
        xp = xp_of(c)
        B, N = c.shape
        up = self.lambda_up * xp.maximum(c.sum(axis=1) / N - self.f_up, 0)
        low = self.lambda_low * (xp.maximum(self.f_low - c, 0) ** 2).sum(axis=1) / N
        return float((up + low).mean())

    def grad(self, S):
        """r[b, j] = dL/dS[b, t, j] (the same at every t)."""
        return self.grad_from_counts(S.sum(axis=1))

    def grad_from_counts(self, c):
        xp = xp_of(c)
        B, N = c.shape
        up_coef, low_coef = self.lambda_up / (B * N), -2.0 * self.lambda_low / (B * N)
        if is_cupy_array(c):        # one kernel instead of ~10 (the sparse backward is launch-bound)
            from . import cuda
            return cuda.reg_grad(c, self.f_up, self.f_low, up_coef, low_coef)
        up = up_coef * (c.sum(axis=1, keepdims=True) / N - self.f_up > 0)
        low = low_coef * xp.maximum(self.f_low - c, 0)
        return (up + low).astype(c.dtype)


class S3GDLoss(SoftmaxCrossEntropy):
    """NLL of the logits plus the network's regularizer value (its gradient is added by
    ``Network.backward``); use it with the Trainer: ``Trainer(net, S3GDLoss(net), ...)``."""

    def __init__(self, net):
        self.net = net

    def value_and_grad(self, logits, labels):
        """(NLL + regularizer value, dNLL/dlogits), the value left on the logits' device (no host
        read; the Trainer's device path calls this, as it does for SoftmaxCrossEntropy)."""
        value, grad = super().value_and_grad(logits, labels)
        return value + self.net.reg_value, grad
