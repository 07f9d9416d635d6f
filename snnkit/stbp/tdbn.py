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

from .. import checks
from ..backend import is_cupy_array, to_device, xp_of
from ..nn.protocol import TrainingMode, require_forward


# ---- NumPy twins of the kernels ---------------------------------------------------------------------
def channel_means(x2d, mean=None):
    """Per-channel mean of x [R, C], or of (x - mean)^2 when ``mean`` is given (variance, pass 2)."""
    if is_cupy_array(x2d):
        return _channel_means_cuda(x2d, mean)
    R = x2d.shape[0]
    return x2d.sum(axis=0) / R if mean is None else ((x2d - mean) ** 2).sum(axis=0) / R


def fold_stats(mean, var, gamma, beta, scale, eps, running_mean=None, running_var=None, momentum=0.1, n=2):
    """(invstd, a, b) with y = a x + b per channel, a = gamma scale / sigma, b = beta - mu a; when
    running buffers are given they are updated in place (momentum, unbiased variance n/(n-1))."""
    if is_cupy_array(mean):
        return _fold_stats_cuda(mean, var, gamma, beta, scale, eps, running_mean, running_var, momentum, n)
    invstd = 1.0 / np.sqrt(var + eps)
    a = gamma * (scale * invstd)
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (n / (n - 1))
    return invstd, a, beta - mean * a


def affine(x2d, a, b):
    """y = x * a[c] + b[c] (the normalization folded into one multiply-add per element)."""
    if is_cupy_array(x2d):
        return _affine_cuda(x2d, a, b)
    return x2d * a + b


def channel_grad_means(g2d, x2d, mean, invstd):
    """(mean_r g, mean_r g * x^) per channel, x^ = (x - mean) * invstd."""
    if is_cupy_array(g2d):
        return _channel_grad_means_cuda(g2d, x2d, mean, invstd)
    R = g2d.shape[0]
    xhat = (x2d - mean) * invstd
    return g2d.sum(axis=0) / R, (g2d * xhat).sum(axis=0) / R


def backward_dx(g2d, x2d, mean, invstd, a, mean_g, mean_gx, batch_statistics=True):
    """dx = a [g - mean(g) - x^ mean(g x^)] (a = k = gamma alpha Vth / sigma); a g in eval mode."""
    if is_cupy_array(g2d):
        return _backward_dx_cuda(g2d, x2d, mean, invstd, a, mean_g, mean_gx, batch_statistics)
    if not batch_statistics:
        return a * g2d
    xhat = (x2d - mean) * invstd
    return a * (g2d - mean_g - xhat * mean_gx)


# ---- the pure functions ----------------------------------------------------------------------------
def batch_stats(x2d):
    """Per-channel mean and biased variance of x [R, C], two-pass."""
    mean = channel_means(x2d)
    return mean, channel_means(x2d, mean)


def tdbn_forward(x, gamma, beta, mean, var, scale=1.0, eps=1e-5):
    """y for x [..., C] given the statistics; ``scale`` = alpha * Vth. Returns (y, invstd, a)."""
    C = x.shape[-1]
    invstd, a, b = fold_stats(mean, var, gamma, beta, scale, eps)
    return affine(x.reshape(-1, C), a, b).reshape(x.shape), invstd, a


def normalize(x, scale=1.0, eps=1e-5):
    """``scale * x^`` for x [..., C] with this batch's statistics, on x's own device (NumPy or CuPy):
    a freshly made layer's training-mode output (gamma = 1, beta = 0) without a layer's parameters on
    the backend's device. ``scale = alpha * Vth`` is tdBN, ``scale = 1`` plain BN."""
    xp, C = xp_of(x), x.shape[-1]
    mean, var = batch_stats(xp.ascontiguousarray(x).reshape(-1, C))
    return tdbn_forward(x, xp.ones(C, x.dtype), xp.zeros(C, x.dtype), mean, var, scale, eps)[0]


def param_grads(mean_g, mean_gx, R, scale=1.0):
    """(dgamma, dbeta) = (scale R mean_r(g x^), R mean_r(g)) over the R rows (T and pixels) of
    g = dL/dy: tdBN's y = scale gamma x^ + beta summed over rows."""
    return (scale * R) * mean_gx, R * mean_g


def tdbn_backward(grad_y, x, mean, invstd, a, scale=1.0, batch_statistics=True, need_dx=True):
    """(dx, dgamma, dbeta); ``batch_statistics`` False for eval mode (statistics are constants);
    dx is None with ``need_dx=False``."""
    C = x.shape[-1]
    g2d, x2d = grad_y.reshape(-1, C), x.reshape(-1, C)
    R = g2d.shape[0]
    mean_g, mean_gx = channel_grad_means(g2d, x2d, mean, invstd)
    dx = backward_dx(g2d, x2d, mean, invstd, a, mean_g, mean_gx, batch_statistics).reshape(x.shape) if need_dx else None
    return (dx, *param_grads(mean_g, mean_gx, R, scale))


# ---- the layer -------------------------------------------------------------------------------------
class TDBatchNorm(TrainingMode):
    """tdBN over the last (channel) axis of a time-major ``[T, B, ..., C]`` input."""

    def __init__(self, C, alpha=1.0, v_th=0.4, eps=1e-5, momentum=0.1, dtype=np.float32, name=None, *,
                 in_shape=None):
        C = checks.integer("C", C, 1, "It is the number of channels (the last axis).")
        alpha = checks.positive("alpha", alpha)
        v_th = checks.positive("v_th", v_th, "It is the LIF threshold the output is scaled to.")
        eps = checks.positive("eps", eps, "It keeps 1/sqrt(var + eps) finite for a constant channel (1e-5).")
        momentum = checks.in_range("momentum", momentum, 0, 1, lo_open=True)
        dtype = checks.float_dtype("dtype", dtype)
        self.C, self.alpha, self.v_th = C, alpha, v_th
        self.eps, self.momentum = eps, momentum
        self.name = name
        # the axes between [T, B] and C, e.g. (H, W): when given, the layout is checked by shape
        self.in_shape = None if in_shape is None else tuple(checks.integer("in_shape", v, 1) for v in in_shape)
        self.params = {"gamma": to_device(np.ones(C, dtype)), "beta": to_device(np.zeros(C, dtype))}
        self.grads = {k: xp_of(v).zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": to_device(np.zeros(C, dtype)),
                        "running_var": to_device(np.ones(C, dtype))}
        self.training = True
        self._cache = None

    @property
    def scale(self):
        return self.alpha * self.v_th

    def statistics(self, x):
        """(mean, invstd, a, shift) with y = a x + shift per channel: this batch's statistics in
        training mode (the running buffers updated), the running ones in eval mode. ``forward``
        and the fused tdBN + LIF (:class:`snnkit.stbp.fused.NormLIF`) both start here."""
        if getattr(x, "ndim", 0) < 2 or x.shape[-1] != self.C:
            raise ValueError(f"{self!r} expects [T, B, ..., {self.C}] (channels last), got shape "
                             f"{getattr(x, 'shape', None)}")
        if self.in_shape is not None and tuple(x.shape[2:-1]) != self.in_shape:
            raise ValueError(f"{self!r} was built for [T, B, {', '.join(map(str, self.in_shape))}, {self.C}] "
                             f"(channels last); got shape {x.shape}. A channels-first array must be moved to "
                             "channels-last first.")
        if x.dtype.kind != "f":
            raise TypeError(f"{self!r}: x must be float32 or float64, got {x.dtype}")
        x2d = x.reshape(-1, self.C)
        R = x2d.shape[0]
        g, b = self.params["gamma"], self.params["beta"]
        if self.training:
            if R < 2:
                raise ValueError(f"x has shape {x.shape}: tdBN in training mode needs at least 2 values per channel "
                                 "(T*B*H*W >= 2) to estimate a variance; use a larger batch, or eval mode")
            mean, var = batch_stats(x2d)
            invstd, a, shift = fold_stats(mean, var, g, b, self.scale, self.eps, self.buffers["running_mean"],
                                          self.buffers["running_var"], self.momentum, R)
        else:
            mean = self.buffers["running_mean"]
            invstd, a, shift = fold_stats(mean, self.buffers["running_var"], g, b, self.scale, self.eps)
        return mean, invstd, a, shift

    def forward(self, x):
        mean, invstd, a, shift = self.statistics(x)
        self._cache = (x, mean, invstd, a, self.training)
        return affine(x.reshape(-1, self.C), a, shift).reshape(x.shape)

    __call__ = forward

    def backward(self, grad_y, need_input_grad=True):
        require_forward(self, self._cache)
        x, mean, invstd, a, batch_statistics = self._cache
        if getattr(grad_y, "shape", None) != x.shape:
            raise ValueError(f"grad_y must have the forward output's shape {x.shape}; got "
                             f"{getattr(grad_y, 'shape', None)}")
        dx, dgamma, dbeta = tdbn_backward(grad_y, x, mean, invstd, a, self.scale, batch_statistics, need_input_grad)
        self.grads["gamma"][...] = dgamma
        self.grads["beta"][...] = dbeta
        return dx

    def folded(self):
        """(a, b) with eval-mode y = a * x + b per channel (fold into the preceding conv's weights)."""
        _, a, b = fold_stats(self.buffers["running_mean"], self.buffers["running_var"], self.params["gamma"],
                             self.params["beta"], self.scale, self.eps)
        return a, b

    def __repr__(self):
        return f"{type(self).__name__}({self.C}, alpha={self.alpha:.4g}, v_th={self.v_th})"


class BatchNorm(TDBatchNorm):
    """Plain batch norm for comparison: same statistics, output N(0, 1), no alpha * Vth."""

    def __init__(self, C, eps=1e-5, momentum=0.1, dtype=np.float32, name=None, in_shape=None, **ignored):
        super().__init__(C, 1.0, 1.0, eps, momentum, dtype, name, in_shape=in_shape)

    def __repr__(self):
        return f"BatchNorm({self.C})"


# ---- CUDA launchers (kernels/stbp_tdbn.cu) ---------------------------------------------------------
_TILE_C, _TILE_R = 32, 8                     # a block covers 32 channels x 8 row lanes


def _fn(name, dtype):
    from ..kernels import function
    return function("stbp_tdbn.cu", name, dtype)


def _chunks(R, C):
    """Split the rows into chunks so that about a thousand blocks share the reduction."""
    c_tiles = (C + _TILE_C - 1) // _TILE_C
    n_chunks = max(1, min((R + 63) // 64, 1024 // c_tiles))
    rows = (R + n_chunks - 1) // n_chunks
    return c_tiles, (R + rows - 1) // rows, rows


def _reduce(part, C, mul):
    from ..kernels import launch_1d
    out = xp_of(part).empty(C, part.dtype)
    launch_1d(_fn("tdbn_reduce_chunks", part.dtype), C,
              (part, np.int32(part.shape[0]), np.int32(C), part.dtype.type(mul), out))
    return out


def _channel_means_cuda(x2d, mean):
    xp = xp_of(x2d)
    x2d = xp.ascontiguousarray(x2d)
    R, C = x2d.shape
    c_tiles, n_chunks, rows = _chunks(R, C)
    part = xp.empty((n_chunks, C), x2d.dtype)
    mean_arg = xp.ascontiguousarray(mean, dtype=x2d.dtype) if mean is not None else x2d  # unused if 0
    _fn("tdbn_partial_sums", x2d.dtype)((c_tiles, n_chunks), (_TILE_C, _TILE_R),
                                        (x2d, mean_arg, np.int64(R), np.int32(C), np.int64(rows),
                                         np.int32(mean is not None), part))
    return _reduce(part, C, 1.0 / R)


def _fold_stats_cuda(mean, var, gamma, beta, scale, eps, running_mean, running_var, momentum, n):
    from ..kernels import launch_1d
    xp = xp_of(mean)
    C, d = mean.shape[0], mean.dtype
    invstd, a, b = xp.empty(C, d), xp.empty(C, d), xp.empty(C, d)
    update = running_mean is not None
    rm = running_mean if update else mean                  # unused when update == 0
    rv = running_var if update else var
    f = d.type
    launch_1d(_fn("tdbn_fold", d), C,
              (mean, var, xp.ascontiguousarray(gamma, dtype=d), xp.ascontiguousarray(beta, dtype=d),
               f(scale), f(eps), np.int32(update), f(momentum), f(n / max(n - 1, 1)), rm, rv,
               invstd, a, b, np.int32(C)))
    return invstd, a, b


def _channel_grad_means_cuda(g2d, x2d, mean, invstd):
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
    return _reduce(part_g, C, 1.0 / R), _reduce(part_gx, C, 1.0 / R)


def _affine_cuda(x2d, a, b):
    from ..kernels import launch_1d
    xp = xp_of(x2d)
    x2d = xp.ascontiguousarray(x2d)
    y = xp.empty_like(x2d)
    d = x2d.dtype
    launch_1d(_fn("tdbn_affine", d), x2d.size,
              (x2d, xp.ascontiguousarray(a, dtype=d), xp.ascontiguousarray(b, dtype=d), y,
               np.int64(x2d.size), np.int32(x2d.shape[1])))
    return y


def _backward_dx_cuda(g2d, x2d, mean, invstd, a, mean_g, mean_gx, batch_statistics):
    from ..kernels import launch_1d
    xp = xp_of(g2d)
    d = g2d.dtype
    g2d, x2d = xp.ascontiguousarray(g2d), xp.ascontiguousarray(x2d, dtype=d)
    dx = xp.empty_like(g2d)
    vec = [xp.ascontiguousarray(v, dtype=d) for v in (mean, invstd, a, mean_g, mean_gx)]
    launch_1d(_fn("tdbn_backward_dx", d), g2d.size,
              (g2d, x2d, *vec, np.int32(bool(batch_statistics)), dx, np.int64(g2d.size), np.int32(g2d.shape[1])))
    return dx
