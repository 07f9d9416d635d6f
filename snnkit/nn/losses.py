"""Losses on logits (real-valued outputs), shared by S3GD and STBP.

Softmax cross-entropy over a batch of B samples:
    p = softmax(z),  L = -(1/B) sum_b log p[b, y_b],  dL/dz = (p - onehot(y)) / B
"""
from __future__ import annotations

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
        xp = xp_of(logits)
        labels = xp.asarray(labels).astype(xp.int64)
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ValueError(f"logits must be [batch, classes] and labels [batch]; got {logits.shape} "
                             f"and {labels.shape}")
        B = logits.shape[0]
        lp = log_softmax(logits)
        rows = xp.arange(B)
        loss = -lp[rows, labels].mean()
        grad = xp.exp(lp)
        grad[rows, labels] -= 1.0
        return float(loss), grad / B

    def predict(self, logits):
        return logits.argmax(axis=1)
