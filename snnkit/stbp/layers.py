r"""The small layers of a spiking ResNet: direct input encoding, fully connected, pooling, and the
non-spiking readout. All take and return time-major arrays ``[T, B, ...]`` (channels-last images
``[T, B, H, W, C]``), except the readout, which averages over T:

    DirectInput:  x[t] = image                        (the analog image at every step)   dx = sum_t g[t]
    Linear:       y[t] = x[t] W^T (+ b)                dW = sum_t g[t]^T x[t],  dx[t] = g[t] W
    AvgPool2d:    y = mean of each k x k window          dx = g / k^2 spread over the window
    GlobalAvgPool: y[t, b, c] = mean_(h,w) x[t, b, h, w, c]
    Readout:      z[b] = (1/T) sum_t x[t, b]  (logits)   dx[t] = g / T
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import get_xp, rng as host_rng, to_device, xp_of
from ..datasets.encoders import repeat_over_time
from ..nn.protocol import require_forward


class RepeatOverTime:
    """What the direct-encoding inputs share: the same frame at every step (``repeat_over_time``),
    so the backward is the sum over T, in the input's shape (None with ``need_input_grad=False``:
    the input is data). Subclasses check and shape the data in ``forward`` and call ``_repeat``."""

    def __init__(self, n_steps):
        self.n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time steps T.")
        self.params, self.grads = {}, {}
        self._in_shape = None

    def _repeat(self, x, frame):
        self._in_shape = x.shape
        return repeat_over_time(frame, self.n_steps)

    def __call__(self, x):
        return self.forward(x)

    def backward(self, grad_y, need_input_grad=True):
        require_forward(self, self._in_shape)
        return grad_y.sum(axis=0).reshape(self._in_shape) if need_input_grad else None


class DirectInput(RepeatOverTime):
    """``[B, features]`` data -> ``[T, B, H, W, C]`` with the same analog frame at every step."""

    def __init__(self, n_steps, shape, dtype=np.float32):
        super().__init__(n_steps)
        shape = tuple(checks.integer("shape", s, 1) for s in shape)
        if len(shape) == 2:
            shape = shape + (1,)
        if len(shape) != 3:
            raise ValueError(f"shape is (H, W) or (H, W, C), got {shape}")
        self.shape, self.dtype = shape, checks.float_dtype("dtype", dtype)

    def forward(self, x):
        """``x`` is [B, H*W*C] (flat, channels-last order), [B, H, W, C], or [B, H, W] when C == 1.
        The layout is checked by shape: a channels-first [B, C, H, W] is refused, not reshaped."""
        xp = xp_of(x) if hasattr(x, "__cuda_array_interface__") else get_xp()
        x = checks.real_array("x", x) if not hasattr(x, "__cuda_array_interface__") else x
        n = int(np.prod(self.shape))
        H, W, C = self.shape
        accepted = [(n,), self.shape] + ([(H, W)] if C == 1 else [])
        if x.ndim < 2 or tuple(x.shape[1:]) not in accepted:
            hint = ""
            if x.ndim == 4 and tuple(x.shape[1:]) == (C, H, W):
                hint = " It is channels-first [B, C, H, W]: move the channels last with x.transpose(0, 2, 3, 1)."
            raise ValueError(f"DirectInput{self.shape} expects x of shape [B, {n}] or [B, {H}, {W}, {C}] "
                             f"(channels last){' or [B, %d, %d]' % (H, W) if C == 1 else ''}; got {x.shape}.{hint}")
        if x.shape[0] < 1:
            raise ValueError(f"DirectInput: x is an empty batch (shape {x.shape}); pass at least one sample")
        x = xp.asarray(x, dtype=self.dtype)
        if xp is np and not checks.all_finite(x):
            raise ValueError("DirectInput: x contains NaN or Inf; check the data (a NaN pixel would otherwise be "
                             "blamed on a later layer).")
        return self._repeat(x, x.reshape((x.shape[0],) + self.shape))

    def __repr__(self):
        return f"DirectInput(T={self.n_steps}, shape={self.shape})"


class Linear:
    """Fully connected over the last axis of ``[T, B, N_in]``; weight [N_out, N_in]."""

    def __init__(self, n_in, n_out, bias=True, seed=None, dtype=np.float32, name=None):
        self.n_in, self.n_out = checks.integer("n_in", n_in, 1), checks.integer("n_out", n_out, 1)
        dtype = checks.float_dtype("dtype", dtype)
        bound = 1.0 / np.sqrt(n_in)                      # PyTorch's default init
        r = host_rng(seed)
        self.params = {"weight": to_device(r.uniform(-bound, bound, (n_out, n_in)).astype(dtype))}
        if bias:
            self.params["bias"] = to_device(r.uniform(-bound, bound, n_out).astype(dtype))
        self.grads = {k: xp_of(v).zeros_like(v) for k, v in self.params.items()}
        self.name = name
        self._x = None

    def forward(self, x):
        if getattr(x, "ndim", 0) < 1 or x.shape[-1] != self.n_in:
            raise ValueError(f"{self!r} expects {self.n_in} features on the last axis, got shape "
                             f"{getattr(x, 'shape', None)}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self!r}: x must be float32 or float64, got {x.dtype}")
        self._x = x
        y = x.reshape(-1, self.n_in) @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y.reshape(x.shape[:-1] + (self.n_out,))

    __call__ = forward

    def backward(self, grad_y, need_input_grad=True):
        require_forward(self, self._x)
        if getattr(grad_y, "shape", None) != self._x.shape[:-1] + (self.n_out,):
            raise ValueError(f"grad_y must have the forward output's shape {self._x.shape[:-1] + (self.n_out,)}; "
                             f"got {getattr(grad_y, 'shape', None)}")
        g2 = grad_y.reshape(-1, self.n_out)
        self.grads["weight"][...] = g2.T @ self._x.reshape(-1, self.n_in)
        if "bias" in self.params:
            self.grads["bias"][...] = g2.sum(axis=0)
        return (g2 @ self.params["weight"]).reshape(self._x.shape) if need_input_grad else None

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out}, bias={'bias' in self.params})"


class _Mean:
    """What the two poolings share: no parameters, the input shape kept by forward, and a backward
    that spreads ``grad_y`` evenly back over each mean's inputs (``_spread``)."""

    def __init__(self):
        self.params, self.grads = {}, {}
        self._shape = None

    def __call__(self, x):
        return self.forward(x)

    def backward(self, grad_y, need_input_grad=True):
        require_forward(self, self._shape)
        return self._spread(grad_y, xp_of(grad_y), *self._shape) if need_input_grad else None


class AvgPool2d(_Mean):
    """Mean over non-overlapping k x k windows of ``[T, B, H, W, C]`` (H and W divisible by k)."""

    def __init__(self, k=2):
        super().__init__()
        self.k = checks.integer("k", k, 1, "It is the pooling window's side.")

    def forward(self, x):
        if getattr(x, "ndim", 0) != 5:
            raise ValueError(f"AvgPool2d takes [T, B, H, W, C] (channels last), got shape {getattr(x, 'shape', None)}")
        T, B, H, W, C = x.shape
        k = self.k
        if H % k or W % k:
            raise ValueError(f"AvgPool2d({k}) needs H and W divisible by {k}, got {H}x{W}; crop or pad first")
        self._shape = x.shape
        return x.reshape(T, B, H // k, k, W // k, k, C).mean(axis=(3, 5))

    def _spread(self, grad_y, xp, T, B, H, W, C):
        k = self.k
        g = grad_y[:, :, :, None, :, None, :] / (k * k)
        return xp.ascontiguousarray(xp.broadcast_to(g, (T, B, H // k, k, W // k, k, C))).reshape(self._shape)

    def __repr__(self):
        return f"AvgPool2d({self.k})"


class GlobalAvgPool(_Mean):
    """``[T, B, H, W, C] -> [T, B, C]``: mean over the image."""

    def forward(self, x):
        if getattr(x, "ndim", 0) != 5:
            raise ValueError(f"GlobalAvgPool takes [T, B, H, W, C], got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def _spread(self, grad_y, xp, T, B, H, W, C):
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
        self._T = None

    def forward(self, x):
        if getattr(x, "ndim", 0) < 2 or x.shape[0] < 1:
            raise ValueError(f"Readout takes [T, B, ...] with T >= 1, got shape {getattr(x, 'shape', None)}")
        self._T = x.shape[0]
        return x.mean(axis=0)

    __call__ = forward

    def backward(self, grad_y, need_input_grad=True):
        require_forward(self, self._T)
        return repeat_over_time(grad_y / self._T, self._T) if need_input_grad else None

    def __repr__(self):
        return "Readout(mean over T)"
