r"""A deep *plain* (non-residual) spiking stack, trained with STBP: where normalization decides
whether a deep SNN learns at all.

    x[t] = image                                   (direct input: the same frame at every step)
    h_1  = LIF( norm_1( W_1 x ) )
    h_l  = LIF( norm_l( W_l h_(l-1) ) )            l = 2 .. depth
    z    = (1/T) sum_t W_out h_depth[t]            (non-spiking readout, logits)

``norm`` is tdBN (N(0, (alpha Vth)^2) at init), plain BN (N(0, 1)) or nothing. Without a shortcut
every layer's drive comes only from the spikes of the layer below, so whatever one layer does to
the activity (and, backward, to the gradient) compounds over the depth: the experiment the residual
network hides. Weights start at ``gain`` x PyTorch's default Linear init, U(-1/sqrt(n_in), 1/sqrt(n_in)),
like :func:`snnkit.stbp.probe.depth_profile`, so the probe's forecast and the trained stack agree.

:func:`gradient_profile` runs one real forward and backward (the layers' own STBP backward, no
approximation) and returns the weight-gradient norm ||dL/dW_l|| and the firing rate of every layer.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp, xp_of
from ..nn.losses import SoftmaxCrossEntropy
from ..nn.sequential import Sequential
from .layers import Linear, Readout, RepeatOverTime
from .lif import LIF, STBP, _as_parameters
from .resnet import NORMS, make_norm


class RepeatInput(RepeatOverTime):
    """``[B, features]`` -> ``[T, B, features]``: direct encoding of flat data (no image shape)."""

    def forward(self, x):
        xp = xp_of(x) if hasattr(x, "__cuda_array_interface__") else get_xp()
        x = xp.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"RepeatInput takes [B, features], got shape {x.shape}; flatten images first")
        return self._repeat(x, x)

    def __repr__(self):
        return f"RepeatInput(T={self.n_steps})"


class PlainStack(Sequential):
    """``depth`` x (Linear -> norm -> LIF) on flat input, then a Linear readout averaged over T.

    ``hidden`` lists the hidden Linear layers (input side first) and ``lifs`` their LIF layers, so
    that a gradient or firing rate can be read per depth."""

    def __init__(self, n_in, n_classes, depth=16, width=64, n_steps=2, norm="tdbn", neuron=STBP, alpha=1.0,
                 gain=1.0, seed=0):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if int(depth) < 1 or int(width) < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
        if not gain > 0:
            raise ValueError(f"gain scales the initial weights and must be > 0, got {gain}")
        neuron = _as_parameters(neuron)
        r = np.random.default_rng(seed)
        self.hidden, self.lifs, layers = [], [], [RepeatInput(n_steps)]
        n = int(n_in)
        for l in range(int(depth)):
            lin = Linear(n, width, bias=norm is None, seed=int(r.integers(2 ** 31)), name=f"fc{l + 1}")
            lin.params["weight"] *= np.float32(gain)
            bn = make_norm(norm, width, alpha, neuron.v_th, np.float32, f"norm{l + 1}")
            lif = LIF(neuron, name=f"lif{l + 1}")
            layers += [lin, bn, lif]
            self.hidden.append(lin)
            self.lifs.append(lif)
            n = width
        layers += [Linear(width, n_classes, seed=int(r.integers(2 ** 31)), name="out"), Readout()]
        super().__init__(layers)
        self.neuron = neuron
        self.config = dict(depth=int(depth), width=int(width), n_steps=int(n_steps), norm=norm, neuron=neuron,
                           alpha=alpha, gain=gain)

    def backward(self, grad, need_input_grad=False):
        """As Sequential's, but by default without dL/d(data): a model's input is data, so the
        first Linear skips its input gradient."""
        return super().backward(grad, need_input_grad)

    def __repr__(self):
        c = self.config
        return (f"PlainStack(depth={c['depth']}, width={c['width']}, T={c['n_steps']}, norm={c['norm']!r}, "
                f"Vth={self.neuron.v_th}, gain={c['gain']})")


def gradient_profile(model: PlainStack, x, y):
    """One forward and backward of ``model`` (training mode) on the batch ``(x, y)``.

    Returns {"layer": 1..depth, "grad_norm": ||dL/dW_l|| (Frobenius) of each hidden Linear,
    "rate": spikes per neuron per step of each LIF layer, "loss": the batch's cross-entropy}. The
    weight gradients stay in the layers' ``grads``; the running statistics of the norms are left as
    they were (the forward runs in training mode, with the batch's statistics)."""
    model.train()
    saved = [(b, b.copy()) for layer in model.layers for b in getattr(layer, "buffers", {}).values()]
    rates, h = [], x
    for layer in model.layers:               # the Sequential forward, reading each LIF's spikes on the way
        h = layer.forward(h)
        if isinstance(layer, LIF):
            rates.append(float(h.mean()))
    logits = h
    loss, grad = SoftmaxCrossEntropy()(logits, xp_of(logits).asarray(y))
    model.backward(grad)
    xp = xp_of(logits)
    norms = [float(xp.sqrt((lin.grads["weight"].astype(np.float64) ** 2).sum())) for lin in model.hidden]
    for b, v in saved:                       # a probe, not a training step: running statistics unchanged
        b[...] = v
    return {"layer": np.arange(1, len(norms) + 1), "grad_norm": np.array(norms), "rate": np.array(rates),
            "loss": float(loss)}


def train_plain_stack(train, test, norm="tdbn", depth=12, width=64, n_steps=2, neuron=STBP, alpha=1.0,
                      gain=1.0, epochs=5, batch_size=64, lr=5e-3, seed=0):
    """Train a :class:`PlainStack` with STBP (Adam, softmax cross-entropy) on ``train`` (a
    :class:`snnkit.datasets.Dataset` with flat features) and evaluate it on ``test``.

    Returns {"test_acc", "history" (Trainer.fit's), "seconds", "model", "init": gradient_profile at
    initialization on the first ``batch_size`` training samples (measured before the first step)}."""
    import time

    from ..nn import Adam, Trainer

    model = PlainStack(train.x.shape[1], train.n_classes, depth=depth, width=width, n_steps=n_steps, norm=norm,
                       neuron=neuron, alpha=alpha, gain=gain, seed=seed)
    init = gradient_profile(model, train.x[:batch_size], train.y[:batch_size])
    trainer = Trainer(model, SoftmaxCrossEntropy(), Adam(model, lr), batch_size=batch_size, seed=seed,
                      progress=False)
    t0 = time.perf_counter()
    history = trainer.fit((train.x, train.y), epochs=epochs)
    _, test_acc = trainer.evaluate(test.x, test.y)
    return {"test_acc": float(test_acc), "history": history, "seconds": time.perf_counter() - t0,
            "model": model, "init": init}
