"""Ready-made BATS experiments on the embedded data sets (used by the tests and the notebooks).

``digits_count``: 8x8 digits, one latency spike per pixel (t = 0.1 (1 - x), black stays silent),
a 64-128(10)-10(30) network trained with the spike-count loss (targets 15 / 3), Adam.
``yinyang_ttfs``: yin-yang (x, y, 1-x, 1-y) plus a bias spike at t = 0, a 5-120(1)-3(1) network
trained with the TTFS cross-entropy, Adam. Both return ``(trainer, history, test accuracy, seconds)``.
"""
from __future__ import annotations

import time

import numpy as np

from ..datasets import load
from ..nn import Adam, Trainer
from .layers import LIFDense, Network, latency_encoder
from .neuron import LIFParameters
from .losses import SpikeCountLoss, TTFSCrossEntropy

__all__ = ["digits_count", "yinyang_ttfs", "with_bias"]


def with_bias(x):
    """Append a constant feature 1 (a spike at t = 0 under latency coding): a learnable offset."""
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)


def _fit(net, loss, lr, batch_size, epochs, train, val, test, seed, progress):
    trainer = Trainer(net, loss, Adam(net, lr=lr), batch_size=batch_size, encode=latency_encoder(0.1),
                      seed=seed, progress=progress)
    t0 = time.perf_counter()
    history = trainer.fit(train, val=val, epochs=epochs)
    _, acc = trainer.evaluate(*test)
    return trainer, history, acc, time.perf_counter() - t0


def digits_count(epochs=10, hidden=128, lr=0.005, batch_size=32, seed=0, n_train=None, progress=False):
    (xtr, ytr), val, test = (load("digits", split=s) for s in ("train", "validation", "test"))
    if n_train:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    net = Network(LIFDense(64, hidden, LIFParameters(0.13, 0.05, max_spikes=10, t_max=0.2), seed=seed),
                  LIFDense(hidden, 10, LIFParameters(0.13, 0.2, max_spikes=30, t_max=0.2), seed=seed + 1))
    return _fit(net, SpikeCountLoss(15, 3), lr, batch_size, epochs, (xtr, ytr), tuple(val), tuple(test),
                seed, progress)


def yinyang_ttfs(epochs=15, hidden=120, lr=0.002, batch_size=32, tau_loss=0.01, seed=0, n_train=None,
                 progress=False):
    (xtr, ytr), (xva, yva), (xte, yte) = (load("yinyang", split=s) for s in ("train", "validation", "test"))
    if n_train:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    net = Network(LIFDense(5, hidden, LIFParameters(0.13, 0.02, max_spikes=1, t_max=0.3), seed=seed),
                  LIFDense(hidden, 3, LIFParameters(0.13, 0.5, max_spikes=1, t_max=0.3), seed=seed + 1,
                           init=(0.0, 1.0)))
    return _fit(net, TTFSCrossEntropy(tau_loss), lr, batch_size, epochs, (with_bias(xtr), ytr),
                (with_bias(xva), yva), (with_bias(xte), yte), seed, progress)
