r"""tdBN's apply fused with the LIF that follows it: one pass over the activation instead of three.

Unfused, a tdBN + LIF pair moves, after the statistics: affine (read x, write y), LIF (read y, write
o) forward, and LIF backward (read y, read dL/do, write dL/dy), tdBN's two gradient sums (read
dL/dy, read x) and its dx (read dL/dy, read x, write dx) backward. Fused
(``kernels/stbp_lif.cu``: norm_lif_forward, norm_lif_backward):

    forward:   o = LIF(y),  y[t, ..., c] = x[t, ..., c] a[c] + b[c] (+ r[t, ...])     read x (r), write o
    backward:  dL/dy = LIF'(dL/do; y recomputed from x),  and in the same pass
               S_g[c] = sum g,  S_gx[c] = sum g x^  (x^ = (x - mu) / sigma)          read x, dL/do, write dL/dy
               dx = a [g - S_g / R - x^ S_gx / R]  (tdBN's own kernel)               read dL/dy, x, write dx

with a, b tdBN's folded scale and shift (:func:`snnkit.stbp.tdbn.fold_stats`) and r the residual
branch a block's last LIF adds (the shortcut's output, or the block input). y is never stored.
Gradients: dL/dy is also the residual branch's gradient; dgamma = alpha Vth S_gx, dbeta = S_g,
exactly as :func:`snnkit.stbp.tdbn.tdbn_backward` computes them.

The NumPy twins of kernels/stbp_lif.cu (norm_lif_forward, norm_lif_backward) are the existing
twins composed (tdbn.affine, lif.lif_forward_reference, lif.lif_backward_reference,
tdbn.channel_grad_means): the fused kernels compute the same formulas in one pass. :class:`NormLIF` runs a (TDBatchNorm, LIF) pair of a model through them, keeping both
layers' parameters and gradients where the optimizer finds them (the layers stay in the model's
``layers`` list; only the order of the work changes).
"""
from __future__ import annotations

import numpy as np

from ..backend import is_cupy_array, xp_of
from ..nn.protocol import require_forward
from . import tdbn as _bn
from .lif import _check, lif_backward_reference, lif_forward_reference


# ---- NumPy twins -----------------------------------------------------------------------------------
def _lif_input(x, a, b, residual):
    y = _bn.affine(x.reshape(-1, x.shape[-1]), a, b).reshape(x.shape)
    return y if residual is None else y + residual


def norm_lif_forward_reference(x, a, b, neuron, residual=None):
    """o = LIF(x a + b (+ residual)) for x [T, ..., C]."""
    return lif_forward_reference(_lif_input(x, a, b, residual), neuron)


def norm_lif_backward_reference(grad_o, x, a, b, mean, invstd, neuron, residual=None):
    """(dL/dy, mean_r g, mean_r g x^): the LIF backward through y = x a + b (+ residual), then tdBN's
    per-channel gradient means over every row (T and pixels) of g = dL/dy."""
    gy = lif_backward_reference(grad_o, _lif_input(x, a, b, residual), neuron)
    C = x.shape[-1]
    mean_g, mean_gx = _bn.channel_grad_means(gy.reshape(-1, C), x.reshape(-1, C), mean, invstd)
    return gy, mean_g, mean_gx


# ---- CUDA launchers --------------------------------------------------------------------------------
def _kernel(name, T, dtype):
    # the LIF kernels' module and options (STBP_T; STBP_V = 1: the fused kernels take one neuron per
    # thread, but the file's plain LIF kernels need a V to compile; --fmad=false: spikes round like
    # the twin)
    from ..kernels import function
    return function("stbp_lif.cu", name, dtype, {"STBP_T": int(T), "STBP_V": 1}, ("--fmad=false",))


def _norm_lif_forward_cuda(x, a, b, neuron, residual):
    from ..kernels import launch_1d
    xp = xp_of(x)
    x = xp.ascontiguousarray(x)
    d, s = x.dtype, x.dtype.type
    T, C = x.shape[0], x.shape[-1]
    M = x.size // T
    r = xp.ascontiguousarray(residual, dtype=d) if residual is not None else x      # unused when has_r = 0
    o = xp.empty_like(x)
    launch_1d(_kernel("norm_lif_forward", T, d), M,
              (x, xp.ascontiguousarray(a, dtype=d), xp.ascontiguousarray(b, dtype=d), r,
               np.int32(residual is not None), o, np.int64(M), np.int32(C), s(neuron.decay), s(neuron.v_th)))
    return o


def _norm_lif_backward_cuda(grad_o, x, a, b, mean, invstd, neuron, residual):
    xp = xp_of(x)
    x = xp.ascontiguousarray(x)
    d, s = x.dtype, x.dtype.type
    T, C = x.shape[0], x.shape[-1]
    M = x.size // T
    pixels = M // C
    c_tiles, n_chunks, rows = _bn._chunks(pixels, C)
    r = xp.ascontiguousarray(residual, dtype=d) if residual is not None else x
    gy = xp.empty_like(x)
    part_g, part_gx = xp.empty((n_chunks, C), d), xp.empty((n_chunks, C), d)
    vec = [xp.ascontiguousarray(v, dtype=d) for v in (a, b)]
    stats = [xp.ascontiguousarray(v, dtype=d) for v in (mean, invstd)]
    _kernel("norm_lif_backward", T, d)(
        (c_tiles, n_chunks), (_bn._TILE_C, _bn._TILE_R),
        (x, *vec, r, np.int32(residual is not None), xp.ascontiguousarray(grad_o, dtype=d), *stats, gy,
         part_g, part_gx, np.int64(M), np.int32(C), np.int64(rows), s(neuron.decay), s(neuron.v_th),
         s(neuron.half_width), np.int32(neuron.detach_reset)))
    R = T * pixels
    return gy, _bn._reduce(part_g, C, 1.0 / R), _bn._reduce(part_gx, C, 1.0 / R)


def _fused_on_gpu(x, neuron):
    return is_cupy_array(x) and neuron.surrogate == "rect" and x.dtype in (np.float32, np.float64)


def norm_lif_forward(x, a, b, neuron, residual=None):
    """Spikes of LIF(x a + b (+ residual)), x [T, ..., C] (kernel on CuPy, twin on NumPy)."""
    neuron = _check(x, neuron)
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"residual has shape {residual.shape}, expected x's {x.shape}")
    if _fused_on_gpu(x, neuron):
        return _norm_lif_forward_cuda(x, a, b, neuron, residual)
    return norm_lif_forward_reference(x, a, b, neuron, residual)


def norm_lif_backward(grad_o, x, a, b, mean, invstd, neuron, residual=None):
    """(dL/dy, mean g, mean g x^) of :func:`norm_lif_backward_reference` (kernel on CuPy)."""
    neuron = _check(x, neuron)
    if grad_o.shape != x.shape:
        raise ValueError(f"grad_o has shape {grad_o.shape}, expected x's {x.shape}")
    if _fused_on_gpu(x, neuron):
        return _norm_lif_backward_cuda(grad_o, x, a, b, mean, invstd, neuron, residual)
    return norm_lif_backward_reference(grad_o, x, a, b, mean, invstd, neuron, residual)


# ---- a model's (TDBatchNorm, LIF) pair through the fused kernels -----------------------------------
class NormLIF:
    """Runs ``lif(bn(x) (+ residual))`` fused. ``bn`` and ``lif`` stay the model's layers (their
    params/grads are what the optimizer updates); this object only orders their work.

    ``forward(x, residual=None) -> o``; ``backward(grad_o, need_input_grad=True) -> (dx, dL/dy)``:
    dx for bn's input (None without need_input_grad) and dL/dy, which is also the residual's
    gradient. Training mode only (the batch statistics); in eval mode the layers run unfused."""

    def __init__(self, bn, lif):
        self.bn, self.lif = bn, lif
        self._cache = None

    def forward(self, x, residual=None):
        bn = self.bn
        if not bn.training:                          # eval: the layers one after the other
            y = bn.forward(x)
            self._cache = "unfused"
            return self.lif.forward(y if residual is None else y + residual)
        mean, invstd, a, shift = bn.statistics(x)
        bn._cache = (x, mean, invstd, a, True)
        self._cache = (x, residual, a, shift, mean, invstd)
        self.lif._x = None                           # its input y is never stored; backward is ours
        o = norm_lif_forward(x, a, shift, self.lif.neuron, residual)
        if self.lif.monitoring:
            self.lif._record(o)
        return o

    __call__ = forward

    def backward(self, grad_o, need_input_grad=True):
        require_forward(self, self._cache)
        if self._cache == "unfused":
            gy = self.lif.backward(grad_o)
            return self.bn.backward(gy, need_input_grad), gy
        x, residual, a, shift, mean, invstd = self._cache
        bn = self.bn
        gy, mean_g, mean_gx = norm_lif_backward(grad_o, x, a, shift, mean, invstd, self.lif.neuron, residual)
        C = x.shape[-1]
        R = x.size // C
        bn.grads["gamma"][...], bn.grads["beta"][...] = _bn.param_grads(mean_g, mean_gx, R, bn.scale)
        dx = None
        if need_input_grad:
            dx = _bn.backward_dx(gy.reshape(-1, C), x.reshape(-1, C), mean, invstd, a, mean_g, mean_gx,
                                 True).reshape(x.shape)
        return dx, gy
