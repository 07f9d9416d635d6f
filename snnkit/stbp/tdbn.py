r"""Threshold-dependent batch normalization (tdBN, Zheng et al. AAAI 2021).

Inside snnkit.stbp activations are time-major and channels-last, ``[T, B, (H, W,) C]``, so the
statistics of channel c run over every other axis (T, B, H, W) -- over time too, which is what
makes it "td" -- and, on the flat ``[R, C]`` view (R = T*B*H*W), they are column reductions:

    mu_c = mean_r x[r, c]            var_c = mean_r (x[r, c] - mu_c)^2     (two passes, not E[x^2]-mu^2)
    x^ = (x - mu) / sqrt(var + eps)
    y  = gamma * alpha * Vth * x^ + beta                 (gamma = 1, beta = 0 at init)

so at initialization the pre-activations are N(0, (alpha Vth)^2): the threshold sits at 1/alpha
standard deviations whatever the depth. alpha = 1/sqrt(2) where two branches add (residual blocks).
Running statistics (momentum m = 0.1, unbiased variance R/(R-1)) are used in eval mode.

Backward (k = gamma alpha Vth / sigma, means over r):

    dbeta = sum g      dgamma = alpha Vth sum g x^      dx = k [g - mean(g) - x^ mean(g x^)]

(in eval mode mu and sigma are constants, so dx = k g). Plain BN for comparison is the same layer
with alpha Vth replaced by 1 (``BatchNorm``): pre-activations N(0, 1), blind to the threshold.
"""
from __future__ import annotations

import numpy as np

from ..backend import is_cupy_array, to_device, xp_of


# ---- NumPy twins of the per-channel reductions -----------------------------------------------------
def channel_sums(x2d, mean=None):
    """Column sums of x [R, C], or of (x - mean)^2 when ``mean`` is given."""
    if is_cupy_array(x2d):
        return _channel_sums_cuda(x2d, mean)
    return x2d.sum(axis=0) if mean is None else ((x2d - mean) ** 2).sum(axis=0)


def channel_grad_sums(g2d, x2d, mean, invstd):
    """(sum_r g, sum_r g * x^) per channel, x^ = (x - mean) * invstd."""
    if is_cupy_array(g2d):
        return _channel_grad_sums_cuda(g2d, x2d, mean, invstd)
    xhat = (x2d - mean) * invstd
    return g2d.sum(axis=0), (g2d * xhat).sum(axis=0)


def affine(x2d, scale, shift):
    """y = x * scale[c] + shift[c] (the normalization folded into one multiply-add per element)."""
    if is_cupy_array(x2d):
        return _affine_cuda(x2d, scale, shift)
    return x2d * scale + shift


def backward_dx(g2d, x2d, mean, invstd, k, mean_g, mean_gx):
    """dx = k [g - mean(g) - x^ mean(g x^)]."""
    if is_cupy_array(g2d):
        return _backward_dx_cuda(g2d, x2d, mean, invstd, k, mean_g, mean_gx)
    xhat = (x2d - mean) * invstd
    return k * (g2d - mean_g - xhat * mean_gx)


# ---- the pure functions ----------------------------------------------------------------------------
def batch_stats(x2d):
    """Per-channel mean and biased variance of x [R, C], two-pass."""
    R = x2d.shape[0]
    mean = channel_sums(x2d) / R
    var = channel_sums(x2d, mean) / R
    return mean, var


def tdbn_forward(x, gamma, beta, mean, var, scale=1.0, eps=1e-5):
    """y for x [..., C] given the statistics; ``scale`` = alpha * Vth. Returns (y, invstd)."""
    xp = xp_of(x)
    C = x.shape[-1]
    invstd = 1.0 / xp.sqrt(var + eps)
    a = gamma * (scale * invstd)
    y = affine(x.reshape(-1, C), a, beta - mean * a)
    return y.reshape(x.shape), invstd


def tdbn_backward(grad_y, x, gamma, mean, invstd, scale=1.0, batch_statistics=True):
    """(dx, dgamma, dbeta); ``batch_statistics`` False for eval mode (statistics are constants)."""
    C = x.shape[-1]
    g2d, x2d = grad_y.reshape(-1, C), x.reshape(-1, C)
    R = g2d.shape[0]
    sum_g, sum_gx = channel_grad_sums(g2d, x2d, mean, invstd)
    k = gamma * (scale * invstd)
    if batch_statistics:
        dx = backward_dx(g2d, x2d, mean, invstd, k, sum_g / R, sum_gx / R)
    else:
        dx = backward_dx(g2d, x2d, mean, invstd, k, 0 * sum_g, 0 * sum_gx)
    return dx.reshape(x.shape), scale * sum_gx, sum_g


# ---- the layer -------------------------------------------------------------------------------------
class TDBatchNorm:
    """tdBN over the last (channel) axis of a time-major ``[T, B, ..., C]`` input."""

    def __init__(self, C, alpha=1.0, v_th=0.4, eps=1e-5, momentum=0.1, dtype=np.float32, name=None):
        if int(C) < 1:
            raise ValueError(f"C (channels) must be >= 1, got {C}")
        if not alpha > 0 or not v_th > 0:
            raise ValueError(f"alpha and v_th must be > 0, got alpha={alpha}, v_th={v_th}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.C, self.alpha, self.v_th = int(C), float(alpha), float(v_th)
        self.eps, self.momentum = float(eps), float(momentum)
        self.name = name
        self.params = {"gamma": to_device(np.ones(C, dtype)), "beta": to_device(np.zeros(C, dtype))}
        self.grads = {k: xp_of(v).zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": to_device(np.zeros(C, dtype)),
                        "running_var": to_device(np.ones(C, dtype))}
        self.training = True
        self._cache = None

    @property
    def scale(self):
        return self.alpha * self.v_th

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        if x.shape[-1] != self.C:
            raise ValueError(f"{self!r} expects {self.C} channels on the last axis, got shape {x.shape}")
        if self.training:
            x2d = x.reshape(-1, self.C)
            R = x2d.shape[0]
            if R < 2:
                raise ValueError("tdBN in training mode needs at least 2 values per channel (T*B*H*W >= 2)")
            mean, var = batch_stats(x2d)
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += m * var * (R / (R - 1))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        y, invstd = tdbn_forward(x, self.params["gamma"], self.params["beta"], mean, var, self.scale, self.eps)
        self._cache = (x, mean, invstd, self.training)
        return y

    __call__ = forward

    def backward(self, grad_y):
        x, mean, invstd, batch_statistics = self._cache
        dx, dgamma, dbeta = tdbn_backward(grad_y, x, self.params["gamma"], mean, invstd, self.scale,
                                          batch_statistics)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dx

    def folded(self):
        """(a, b) with eval-mode y = a * x + b per channel (fold into the preceding conv's weights)."""
        xp = xp_of(self.params["gamma"])
        invstd = 1.0 / xp.sqrt(self.buffers["running_var"] + self.eps)
        a = self.params["gamma"] * self.scale * invstd
        return a, self.params["beta"] - self.buffers["running_mean"] * a

    def __repr__(self):
        return f"{type(self).__name__}({self.C}, alpha={self.alpha:.4g}, v_th={self.v_th})"


class BatchNorm(TDBatchNorm):
    """Plain batch norm for comparison: same statistics, output N(0, 1), no alpha * Vth."""

    def __init__(self, C, eps=1e-5, momentum=0.1, dtype=np.float32, name=None, **ignored):
        super().__init__(C, 1.0, 1.0, eps, momentum, dtype, name)

    def __repr__(self):
        return f"BatchNorm({self.C})"


# ---- CUDA launchers (kernels/stbp_tdbn.cu) ---------------------------------------------------------
_TILE_C, _TILE_R = 32, 8                     # a block covers 32 channels x 8 row lanes


def _fn(name, dtype):
    from ..kernels import get_function
    suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}.get(np.dtype(dtype))
    if suffix is None:
        raise ValueError(f"tdBN kernels take float32 or float64, got {dtype}")
    return get_function("stbp_tdbn.cu", f"{name}_{suffix}")


def _chunks(R, C):
    """Split the rows into chunks so that about a thousand blocks share the reduction."""
    c_tiles = (C + _TILE_C - 1) // _TILE_C
    n_chunks = max(1, min((R + 63) // 64, 1024 // c_tiles))
    rows = (R + n_chunks - 1) // n_chunks
    return c_tiles, (R + rows - 1) // rows, rows


def _reduce(part, C):
    xp = xp_of(part)
    out = xp.empty(C, part.dtype)
    from ..kernels import launch_1d
    launch_1d(_fn("tdbn_reduce_chunks", part.dtype), C, (part, np.int32(part.shape[0]), np.int32(C), out))
    return out


def _channel_sums_cuda(x2d, mean):
    xp = xp_of(x2d)
    x2d = xp.ascontiguousarray(x2d)
    R, C = x2d.shape
    c_tiles, n_chunks, rows = _chunks(R, C)
    part = xp.empty((n_chunks, C), x2d.dtype)
    mean_arg = xp.ascontiguousarray(mean, dtype=x2d.dtype) if mean is not None else x2d  # unused if 0
    _fn("tdbn_partial_sums", x2d.dtype)((c_tiles, n_chunks), (_TILE_C, _TILE_R),
                                        (x2d, mean_arg, np.int64(R), np.int32(C), np.int64(rows),
                                         np.int32(mean is not None), part))
    return _reduce(part, C)


def _channel_grad_sums_cuda(g2d, x2d, mean, invstd):
    xp = xp_of(g2d)
    g2d, x2d = xp.ascontiguousarray(g2d), xp.ascontiguousarray(x2d, dtype=g2d.dtype)
    R, C = g2d.shape
    c_tiles, n_chunks, rows = _chunks(R, C)
    part_g = xp.empty((n_chunks, C), g2d.dtype)
    part_gx = xp.empty((n_chunks, C), g2d.dtype)
    _fn("tdbn_partial_grad_sums", g2d.dtype)(
        (c_tiles, n_chunks), (_TILE_C, _TILE_R),
        (g2d, x2d, xp.ascontiguousarray(mean, dtype=g2d.dtype), xp.ascontiguousarray(invstd, dtype=g2d.dtype),
         np.int64(R), np.int32(C), np.int64(rows), part_g, part_gx))
    return _reduce(part_g, C), _reduce(part_gx, C)


def _affine_cuda(x2d, scale, shift):
    from ..kernels import launch_1d
    xp = xp_of(x2d)
    x2d = xp.ascontiguousarray(x2d)
    y = xp.empty_like(x2d)
    d = x2d.dtype
    launch_1d(_fn("tdbn_affine", d), x2d.size,
              (x2d, xp.ascontiguousarray(scale, dtype=d), xp.ascontiguousarray(shift, dtype=d), y,
               np.int64(x2d.size), np.int32(x2d.shape[1])))
    return y


def _backward_dx_cuda(g2d, x2d, mean, invstd, k, mean_g, mean_gx):
    from ..kernels import launch_1d
    xp = xp_of(g2d)
    d = g2d.dtype
    g2d, x2d = xp.ascontiguousarray(g2d), xp.ascontiguousarray(x2d, dtype=d)
    dx = xp.empty_like(g2d)
    vec = [xp.ascontiguousarray(v, dtype=d) for v in (mean, invstd, k, mean_g, mean_gx)]
    launch_1d(_fn("tdbn_backward_dx", d), g2d.size,
              (g2d, x2d, *vec, dx, np.int64(g2d.size), np.int32(g2d.shape[1])))
    return dx
