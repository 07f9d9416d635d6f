r"""The small layers of a spiking ResNet: direct input encoding, fully connected, pooling, and the
non-spiking readout. All take and return time-major arrays ``[T, B, ...]`` (channels-last images
``[T, B, H, W, C]``), except the readout, which averages over T:

    DirectInput:  x[t] = image                        (the analog image at every step)
    Linear:       y[t] = x[t] W^T (+ b)                dW = sum_t g[t]^T x[t],  dx[t] = g[t] W
    AvgPool2d:    y = mean of each k x k window          dx = g / k^2 spread over the window
    GlobalAvgPool: y[t, b, c] = mean_(h,w) x[t, b, h, w, c]
    Readout:      z[b] = (1/T) sum_t x[t, b]  (logits)   dx[t] = g / T
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp, rng as host_rng, to_device, xp_of


class DirectInput:
    """``[B, features]`` data -> ``[T, B, H, W, C]`` with the same analog frame at every step."""

    def __init__(self, n_steps, shape, dtype=np.float32):
        if int(n_steps) < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2:
            shape = shape + (1,)
        if len(shape) != 3:
            raise ValueError(f"shape is (H, W) or (H, W, C), got {shape}")
        self.n_steps, self.shape, self.dtype = int(n_steps), shape, dtype
        self.params, self.grads = {}, {}

    def forward(self, x):
        xp = xp_of(x) if hasattr(x, "__cuda_array_interface__") else get_xp()
        x = xp.asarray(x, dtype=self.dtype)
        n = int(np.prod(self.shape))
        if x.ndim < 1 or x[0].size != n:
            raise ValueError(f"DirectInput{self.shape} expects [B, {n}] (or [B, *{self.shape}]); got {x.shape}")
        frame = x.reshape((x.shape[0],) + self.shape)
        return xp.ascontiguousarray(xp.broadcast_to(frame, (self.n_steps,) + frame.shape))

    __call__ = forward

    def backward(self, grad):
        return None                                    # data needs no gradient

    def __repr__(self):
        return f"DirectInput(T={self.n_steps}, shape={self.shape})"


class Linear:
    """Fully connected over the last axis of ``[T, B, N_in]``; weight [N_out, N_in]."""

    def __init__(self, n_in, n_out, bias=True, seed=None, dtype=np.float32, name=None):
        if int(n_in) < 1 or int(n_out) < 1:
            raise ValueError(f"n_in and n_out must be >= 1, got {n_in}, {n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        bound = 1.0 / np.sqrt(n_in)                      # PyTorch's default init
        r = host_rng(seed)
        self.params = {"weight": to_device(r.uniform(-bound, bound, (n_out, n_in)).astype(dtype))}
        if bias:
            self.params["bias"] = to_device(r.uniform(-bound, bound, n_out).astype(dtype))
        self.grads = {k: xp_of(v).zeros_like(v) for k, v in self.params.items()}
        self.name = name
        self._x = None

    def forward(self, x):
        if x.shape[-1] != self.n_in:
            raise ValueError(f"{self!r} expects {self.n_in} features on the last axis, got shape {x.shape}")
        self._x = x
        y = x.reshape(-1, self.n_in) @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y.reshape(x.shape[:-1] + (self.n_out,))

    __call__ = forward

    def backward(self, grad_y):
        g2 = grad_y.reshape(-1, self.n_out)
        self.grads = {"weight": g2.T @ self._x.reshape(-1, self.n_in)}
        if "bias" in self.params:
            self.grads["bias"] = g2.sum(axis=0)
        return (g2 @ self.params["weight"]).reshape(self._x.shape)

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out}, bias={'bias' in self.params})"


class AvgPool2d:
    """Mean over non-overlapping k x k windows of ``[T, B, H, W, C]`` (H and W divisible by k)."""

    def __init__(self, k=2):
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)
        self.params, self.grads = {}, {}

    def forward(self, x):
        T, B, H, W, C = x.shape
        k = self.k
        if H % k or W % k:
            raise ValueError(f"AvgPool2d({k}) needs H and W divisible by {k}, got {H}x{W}; crop or pad first")
        self._shape = x.shape
        return x.reshape(T, B, H // k, k, W // k, k, C).mean(axis=(3, 5))

    __call__ = forward

    def backward(self, grad_y):
        T, B, H, W, C = self._shape
        k = self.k
        xp = xp_of(grad_y)
        g = grad_y[:, :, :, None, :, None, :] / (k * k)
        return xp.ascontiguousarray(xp.broadcast_to(g, (T, B, H // k, k, W // k, k, C))).reshape(self._shape)

    def __repr__(self):
        return f"AvgPool2d({self.k})"


class GlobalAvgPool:
    """``[T, B, H, W, C] -> [T, B, C]``: mean over the image."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        if x.ndim != 5:
            raise ValueError(f"GlobalAvgPool takes [T, B, H, W, C], got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    __call__ = forward

    def backward(self, grad_y):
        T, B, H, W, C = self._shape
        xp = xp_of(grad_y)
        g = grad_y[:, :, None, None, :] / (H * W)
        return xp.ascontiguousarray(xp.broadcast_to(g, self._shape))

    def __repr__(self):
        return "GlobalAvgPool()"


class Readout:
    """Non-spiking readout: logits = mean over T of the last layer's (real-valued) outputs.

    A spiking last layer would make the logits firing rates in [0, 1], which floors the softmax
    cross-entropy at ln(1 + 9/e) = 1.461 for 10 classes; real-valued logits do not."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        self._T = x.shape[0]
        return x.mean(axis=0)

    __call__ = forward

    def backward(self, grad_y):
        xp = xp_of(grad_y)
        return xp.ascontiguousarray(xp.broadcast_to(grad_y / self._T, (self._T,) + grad_y.shape))

    def __repr__(self):
        return "Readout(mean over T)"
