"""Optimizers that update the ``params`` of a list of layers in place from their ``grads``.

Adam (Kingma & Ba):  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
                     w <- w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)
State is kept per (layer index, parameter name) so that it can be saved with ``state_dict`` as
plain arrays (np.savez, no pickle) and restored for an exact resume.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import to_numpy, xp_of


def _layers_of(model):
    return list(model.layers) if hasattr(model, "layers") else list(model)


class Optimizer:
    slot_names: tuple = ()

    def __init__(self, model, lr: float):
        self.lr = checks.positive("lr", lr, "It is the learning rate, e.g. 1e-3.")
        self.initial_lr = self.lr           # ``lr`` may follow a schedule; this is what the run was built with
        self.layers = _layers_of(model)
        self.t = 0
        self.state: dict = {}

    def settings(self) -> dict:
        """What defines this optimizer for an exact resume (type and hyperparameters, initial lr)."""
        return {"type": type(self).__name__, "lr": self.initial_lr}

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

    def check_state_dict(self, d: dict, where: str = "the state") -> None:
        """ValueError naming the first entry of ``d`` that does not fit this optimizer and model (a
        slot of another optimizer, e.g. Adam's m/v for SGD; a layer or parameter this model lacks; a
        shape that differs). Nothing is assigned."""
        for k in ("opt/t", "opt/lr"):
            if k not in d:
                raise ValueError(f"{where} has no '{k}': it was not written by snnkit's Trainer")
        for key in d:
            if not key.startswith("opt/") or key in ("opt/t", "opt/lr"):
                continue
            parts = key.split("/")
            if len(parts) != 4 or not parts[1].isdigit():
                raise ValueError(f"{where}: unexpected optimizer entry {key!r}")
            _, i, k, slot = parts
            if slot not in self.slot_names:
                raise ValueError(f"{where} holds optimizer state '{slot}', which {type(self).__name__} does not have "
                                 f"(its state: {list(self.slot_names) or 'none'}): it was written by another optimizer.")
            i = int(i)
            if i >= len(self.layers) or k not in getattr(self.layers[i], "params", {}):
                raise ValueError(f"{where} holds optimizer state for parameter '{k}' of layer {i}, which this model "
                                 "does not have; the architecture differs.")
            p = self.layers[i].params[k]
            if tuple(d[key].shape) != tuple(p.shape):
                raise ValueError(f"{where}: optimizer state {key} has shape {tuple(d[key].shape)}, the parameter "
                                 f"has {tuple(p.shape)}; the architecture differs.")

    def load_state_dict(self, d: dict) -> None:
        self.check_state_dict(d)
        self.t = int(d["opt/t"])
        self.lr = float(d["opt/lr"])
        self.state = {}
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
        self.momentum = checks.in_range("momentum", momentum, 0, 1, hi_open=True)

    def settings(self) -> dict:
        return {**super().settings(), "momentum": self.momentum}

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
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (b1, b2), got {betas!r}") from None
        self.b1 = checks.in_range("betas[0]", b1, 0, 1, hi_open=True)
        self.b2 = checks.in_range("betas[1]", b2, 0, 1, hi_open=True)
        self.eps = checks.positive("eps", eps)

    def settings(self) -> dict:
        return {**super().settings(), "betas": [self.b1, self.b2], "eps": self.eps}

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
