"""Losses on logits (real-valued outputs), shared by S3GD and STBP.

Softmax cross-entropy over a batch of B samples:
    p = softmax(z),  L = -(1/B) sum_b log p[b, y_b],  dL/dz = (p - onehot(y)) / B
"""
from __future__ import annotations

from .. import checks
from ..backend import xp_of


def log_softmax(z, axis=-1):
    xp = xp_of(z)
    zmax = z.max(axis=axis, keepdims=True)
    s = z - zmax
    return s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))


def softmax(z, axis=-1):
    xp = xp_of(z)
    return xp.exp(log_softmax(z, axis))


class SoftmaxCrossEntropy:
    """``loss(logits [B, C], labels [B]) -> (mean loss, dL/dlogits)``; ``predict`` is argmax."""

    def __call__(self, logits, labels):
        loss, grad = self.value_and_grad(logits, labels)
        return float(loss), grad

    def value_and_grad(self, logits, labels):
        """(mean loss as a 0-d array on the logits' device, dL/dlogits): no host read, so a GPU
        training step can run ahead of the host (``__call__`` reads the value: one sync per step)."""
        xp = xp_of(logits)
        if getattr(logits, "ndim", 0) != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
            raise ValueError(f"logits must be [batch, classes] with batch >= 1 and classes >= 1; got shape "
                             f"{tuple(getattr(logits, 'shape', ()))}")
        B, C = logits.shape
        labels = xp.asarray(checks.labels(labels, B, C))   # integer, shape (B,), in [0, C)
        lp = log_softmax(logits)
        rows = xp.arange(B)
        loss = -lp[rows, labels].mean()
        grad = xp.exp(lp)
        grad[rows, labels] -= 1.0
        return loss, grad / B

    def predict(self, logits):
        return logits.argmax(axis=1)
