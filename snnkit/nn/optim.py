"""Optimizers that update the ``params`` of a list of layers in place from their ``grads``.

Adam (Kingma & Ba):  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
                     w <- w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)
State is kept per (layer index, parameter name) so that it can be saved with ``state_dict`` as
plain arrays (np.savez, no pickle) and restored for an exact resume.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy, xp_of


def _layers_of(model):
    return list(model.layers) if hasattr(model, "layers") else list(model)


class Optimizer:
    def __init__(self, model, lr: float):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.layers = _layers_of(model)
        self.lr = float(lr)
        self.t = 0
        self.state: dict = {}

    def named_params(self):
        for i, layer in enumerate(self.layers):
            for k, p in getattr(layer, "params", {}).items():
                yield (i, k), layer, p, layer.grads[k]

    def step(self):
        self.t += 1
        for key, layer, p, g in self.named_params():
            self._update(key, p, g)

    def zero_grad(self):
        for _, layer, p, g in self.named_params():
            g[...] = 0

    def state_dict(self) -> dict:
        out = {"opt/t": np.asarray(self.t), "opt/lr": np.asarray(self.lr)}
        for (i, k, slot), arr in self.state.items():
            out[f"opt/{i}/{k}/{slot}"] = to_numpy(arr)
        return out

    def load_state_dict(self, d: dict) -> None:
        self.t = int(d["opt/t"])
        self.lr = float(d["opt/lr"])
        for key in d:
            if key.count("/") == 3 and key.startswith("opt/"):
                _, i, k, slot = key.split("/")
                p = self.layers[int(i)].params[k]
                self.state[(int(i), k, slot)] = xp_of(p).asarray(d[key]).astype(p.dtype)

    def _update(self, key, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Plain (optionally momentum) gradient descent: w <- w - lr g."""
    slot_names = ("velocity",)

    def __init__(self, model, lr: float, momentum: float = 0.0):
        super().__init__(model, lr)
        self.momentum = float(momentum)

    def _update(self, key, p, g):
        if self.momentum:
            v = self.state.setdefault((*key, "velocity"), xp_of(p).zeros_like(p))
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    slot_names = ("m", "v")

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(model, lr)
        self.b1, self.b2 = map(float, betas)
        self.eps = float(eps)

    def _update(self, key, p, g):
        xp = xp_of(p)
        # state is created once (setdefault would allocate a fresh zeros array on every call)
        if (*key, "m") not in self.state:
            self.state[(*key, "m")] = xp.zeros_like(p)
            self.state[(*key, "v")] = xp.zeros_like(p)
        m, v = self.state[(*key, "m")], self.state[(*key, "v")]
        bc1, bc2 = 1 - self.b1 ** self.t, np.sqrt(1 - self.b2 ** self.t)
        step, eps_hat = self.lr * bc2 / bc1, self.eps * bc2
        if xp is not np and p.flags.c_contiguous and g.dtype == p.dtype:
            # the same update as below in one kernel: a dozen small launches cost more than the
            # arithmetic for the layer sizes of this toolkit
            t = p.dtype.type
            _adam_kernel()(g, t(self.b1), t(self.b2), t(step), t(eps_hat), p, m, v)
            return
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * (g * g)
        p -= step * m / (xp.sqrt(v) + eps_hat)


_ADAM = None


def _adam_kernel():
    """CuPy ElementwiseKernel of ``Adam._update`` (built on first use, so NumPy-only installs never
    import CuPy). Scalars come in the parameter's dtype, as NumPy's float32 arithmetic uses them."""
    global _ADAM
    if _ADAM is None:
        import cupy as cp
        _ADAM = cp.ElementwiseKernel(
            "T g, T b1, T b2, T step, T eps_hat", "T p, T m, T v",
            """
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * (g * g);
            p -= step * m / (sqrt(v) + eps_hat);
            """,
            "snnkit_adam_update")
    return _ADAM
