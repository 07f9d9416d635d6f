r"""2-D convolution as im2col + one GEMM, with the time axis folded into the batch.

Activations are channels-last ``[T, B, H, W, C]``; a convolution treats the T*B frames alike, so it
runs on ``[N = T*B, H, W, C]``. For kernel k, stride s, padding p (Ho = (H + 2p - k) // s + 1):

    col[(n, i, j), (a, b, c)] = x[n, i*s + a - p, j*s + b - p, c]      (0 outside the image)
    y[(n, i, j), o]           = sum_(a,b,c) col[(n, i, j), (a, b, c)] * W[o, a, b, c]   -> y = col W^T

The GEMM output is already channels-last, so no transposes. Backward, with g = dL/dy:

    dW = g^T col                 dcol = g W                 dx = col2im(dcol)

where col2im, in gather form, lets each input element add up the (at most k*k) columns it was
copied to -- no atomics. In training the layer keeps ``col`` from forward for backward when it
fits in ``max_col_bytes``; bigger inputs run in chunks of frames and col is recomputed (memory
stays bounded). GEMMs go through the backend's matmul (cuBLAS on CuPy; TF32 tensor cores when CuPy
runs with CUPY_TF32=1).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, xp_of
from ..nn.init import kaiming_normal
from ..nn.protocol import TrainingMode, require_forward


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


# ---- NumPy twins -----------------------------------------------------------------------------------
def im2col_reference(x, k, s, p):
    """col [N*Ho*Wo, k*k*C] of x [N, H, W, C]."""
    xp = xp_of(x)
    N, H, W, C = x.shape
    Ho, Wo = out_size(H, k, s, p), out_size(W, k, s, p)
    xpad = xp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
    col = xp.empty((N, Ho, Wo, k, k, C), x.dtype)
    for a in range(k):
        for b in range(k):
            col[:, :, :, a, b, :] = xpad[:, a:a + s * (Ho - 1) + 1:s, b:b + s * (Wo - 1) + 1:s, :]
    return col.reshape(N * Ho * Wo, k * k * C)


def col2im_reference(dcol, shape, k, s, p):
    """dx [N, H, W, C] = the sum, for each input element, of the column entries it was copied to."""
    xp = xp_of(dcol)
    N, H, W, C = shape
    Ho, Wo = out_size(H, k, s, p), out_size(W, k, s, p)
    d = dcol.reshape(N, Ho, Wo, k, k, C)
    dpad = xp.zeros((N, H + 2 * p, W + 2 * p, C), dcol.dtype)
    for a in range(k):
        for b in range(k):
            dpad[:, a:a + s * (Ho - 1) + 1:s, b:b + s * (Wo - 1) + 1:s, :] += d[:, :, :, a, b, :]
    return dpad[:, p:p + H, p:p + W, :]


# ---- CUDA launchers (kernels/stbp_im2col.cu) -------------------------------------------------------
def _fn(name, dtype):
    from ..kernels import function
    return function("stbp_im2col.cu", name, dtype)


_INT32_LIMIT = 2 ** 31 - 1


def _threads(C):
    """Threads per pixel block: the channels rounded up to a warp, at most 256."""
    return min(256, (C + 31) // 32 * 32)


def _check_int32(n_elements, what):
    if n_elements > _INT32_LIMIT:
        raise ValueError(f"{what} would have {n_elements} elements, more than the kernels' 32-bit indices "
                         "allow; process fewer frames at a time (conv2d_* do this with max_col_bytes)")


# Use the 16-byte-vector kernels (im2col_vec, col2im_vec: the same results, bit for bit) where C and
# the arrays allow. A switch, not a fixed choice, so that benchmarks/bench_stbp.py --levers can time
# both: on an H200 col2im went from 4.17 to 1.43 ms per ResNet-19 step, im2col stayed at 2.5 ms
# (benchmarks/RESULTS.md, STBP round 2).
VECTOR_KERNELS = True


def _vector_ok(C, *arrays):
    """The vector kernels need C a multiple of the 16-byte vector and 16-byte-aligned arrays."""
    n = 16 // arrays[0].itemsize
    return VECTOR_KERNELS and C % n == 0 and all(a.data.ptr % 16 == 0 for a in arrays)


def _dims(*values):
    """The kernels' int arguments (N, H, W, C, Ho, Wo, k, s, p) as int32."""
    return tuple(np.int32(v) for v in values)


def _im2col_cuda(x, k, s, p):
    xp = xp_of(x)
    x = xp.ascontiguousarray(x)
    N, H, W, C = x.shape
    Ho, Wo = out_size(H, k, s, p), out_size(W, k, s, p)
    _check_int32(N * Ho * Wo * k * k * C, "col")
    col = xp.empty((N * Ho * Wo, k * k * C), x.dtype)
    if _vector_ok(C, x, col):                                               # a thread per 16 bytes of col
        from ..kernels import launch_1d
        launch_1d(_fn("im2col_vec", x.dtype), col.size // (16 // x.itemsize),
                  (x, col, *_dims(N, H, W, C, Ho, Wo, k, s, p)))
        return col
    _fn("im2col", x.dtype)((N * Ho * Wo,), (_threads(C),),                  # a block per output pixel
                           (x, col, *_dims(N, H, W, C, Ho, Wo, k, s, p)))
    return col


def _col2im_cuda(dcol, shape, k, s, p):
    xp = xp_of(dcol)
    dcol = xp.ascontiguousarray(dcol)
    N, H, W, C = shape
    Ho, Wo = out_size(H, k, s, p), out_size(W, k, s, p)
    _check_int32(max(dcol.size, N * H * W * C), "col")
    dx = xp.empty((N, H, W, C), dcol.dtype)
    if _vector_ok(C, dcol, dx):                                             # a thread per 16 bytes of dx
        from ..kernels import launch_1d
        launch_1d(_fn("col2im_vec", dcol.dtype), dx.size // (16 // dx.itemsize),
                  (dcol, dx, *_dims(N, H, W, C, Ho, Wo, k, s, p)))
        return dx
    _fn("col2im", dcol.dtype)((N * H * W,), (_threads(C),),                 # a block per input pixel
                              (dcol, dx, *_dims(N, H, W, C, Ho, Wo, k, s, p)))
    return dx


def _check_geometry(k, s, p):
    return (checks.integer("kernel_size", k, 1), checks.integer("stride", s, 1),
            checks.integer("padding", p, 0, "It is the number of zero rows/columns added on each side."))


def im2col(x, k, s=1, p=0):
    k, s, p = _check_geometry(k, s, p)
    if x.ndim != 4:
        raise ValueError(f"im2col takes channels-last frames [N, H, W, C], got shape {x.shape}")
    if out_size(x.shape[1], k, s, p) < 1 or out_size(x.shape[2], k, s, p) < 1:
        raise ValueError(f"a {k}x{k} kernel (stride {s}, padding {p}) does not fit a {x.shape[1]}x{x.shape[2]} "
                         "image; pad more or use a smaller kernel")
    if k == 1 and s == 1 and p == 0:
        return x.reshape(-1, x.shape[3])                      # a 1x1 convolution is a plain GEMM
    return _im2col_cuda(x, k, s, p) if is_cupy_array(x) else im2col_reference(x, k, s, p)


def col2im(dcol, shape, k, s=1, p=0):
    if k == 1 and s == 1 and p == 0:
        return dcol.reshape(shape)
    return _col2im_cuda(dcol, shape, k, s, p) if is_cupy_array(dcol) else col2im_reference(dcol, shape, k, s, p)


# ---- the pure functions: chunks of frames keep col's memory bounded --------------------------------
def _frame_chunks(N, bytes_per_frame, max_col_bytes):
    step = max(1, int(max_col_bytes // max(1, bytes_per_frame)))
    return [(i, min(i + step, N)) for i in range(0, N, step)]


def conv2d_forward(x, weight, stride=1, padding=0, max_col_bytes=1 << 30, return_col=False):
    """y [N, Ho, Wo, Cout] for x [N, H, W, Cin] and weight [Cout, k, k, Cin]. With ``return_col``,
    (y, col) where col is the whole im2col matrix if it fit in one chunk, else None."""
    xp = xp_of(x)
    if getattr(x, "ndim", 0) != 4 or getattr(weight, "ndim", 0) != 4:
        raise ValueError(f"x must be [N, H, W, C] and weight [Cout, k, k, Cin]; got shapes "
                         f"{getattr(x, 'shape', None)} and {getattr(weight, 'shape', None)}")
    _, stride, padding = _check_geometry(weight.shape[1], stride, padding)
    N, H, W, C = x.shape
    Cout, k, _, Cin = weight.shape
    if C != Cin:
        raise ValueError(f"input has {C} channels, the weight expects {Cin}")
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    w2 = weight.reshape(Cout, k * k * Cin)
    chunks = _frame_chunks(N, Ho * Wo * k * k * C * x.itemsize, max_col_bytes)
    if len(chunks) == 1:
        col = im2col(x, k, stride, padding)
        y = (col @ w2.T).reshape(N, Ho, Wo, Cout)
        return (y, col) if return_col else y
    y = xp.empty((N, Ho, Wo, Cout), x.dtype)
    for a, b in chunks:
        y[a:b] = (im2col(x[a:b], k, stride, padding) @ w2.T).reshape(b - a, Ho, Wo, Cout)
    return (y, None) if return_col else y


def conv2d_backward(grad_y, x, weight, stride=1, padding=0, max_col_bytes=1 << 30, need_dx=True, col=None):
    """(dx or None, dweight) for grad_y [N, Ho, Wo, Cout]; ``col`` is forward's (else recomputed)."""
    xp = xp_of(x)
    N, H, W, C = x.shape
    Cout, k, _, _ = weight.shape
    Ho, Wo = grad_y.shape[1], grad_y.shape[2]
    w2 = weight.reshape(Cout, k * k * C)
    dw2 = None
    dx = xp.empty_like(x) if need_dx else None
    chunks = [(0, N)] if col is not None else _frame_chunks(N, Ho * Wo * k * k * C * x.itemsize, max_col_bytes)
    for a, b in chunks:
        c = col if col is not None else im2col(x[a:b], k, stride, padding)
        g2 = grad_y[a:b].reshape(-1, Cout)
        dw2 = g2.T @ c if dw2 is None else dw2 + g2.T @ c
        if need_dx:
            dx[a:b] = col2im(g2 @ w2, (b - a, H, W, C), k, stride, padding)
    return dx, dw2.reshape(weight.shape)


class Conv2d(TrainingMode):
    """Convolution over time-major channels-last activations ``[T, B, H, W, C]`` (no bias: tdBN
    follows). Weights [Cout, k, k, Cin], Kaiming-normal for ReLU-like fan-in scaling."""

    def __init__(self, c_in, c_out, kernel_size=3, stride=1, padding=None, seed=None, dtype=np.float32,
                 name=None, max_col_bytes=1 << 30, *, in_shape=None):
        c_in, c_out, kernel_size, stride = (checks.integer(nm, v, 1) for nm, v in (
            ("c_in", c_in), ("c_out", c_out), ("kernel_size", kernel_size), ("stride", stride)))
        dtype = checks.float_dtype("dtype", dtype)
        self.c_in, self.c_out, self.k, self.stride = c_in, c_out, kernel_size, stride
        self.padding = self.k // 2 if padding is None else checks.integer(
            "padding", padding, 0, "It is the number of zero rows/columns added on each side.")
        self.max_col_bytes = checks.integer("max_col_bytes", max_col_bytes, 1)
        # (H, W) of the input frames: when given, the layout is checked by shape (a channels-first
        # [T, B, C, H, W] with W == C would otherwise pass the channel check)
        self.in_shape = None
        if in_shape is not None:
            self.in_shape = tuple(checks.integer("in_shape", v, 1) for v in in_shape)
            if len(self.in_shape) != 2:
                raise ValueError(f"in_shape is the (H, W) of the input frames; got {in_shape!r}")
            for n in self.in_shape:
                if out_size(n, self.k, self.stride, self.padding) < 1:
                    raise ValueError(f"a {self.k}x{self.k} kernel (stride {self.stride}, padding {self.padding}) "
                                     f"does not fit in_shape {self.in_shape}; pad more or use a smaller kernel")
        fan_in = self.k * self.k * self.c_in
        self.params = {"weight": kaiming_normal((self.c_out, self.k, self.k, self.c_in), fan_in, seed, dtype)}
        self.grads = {"weight": xp_of(self.params["weight"]).zeros_like(self.params["weight"])}
        self.name = name
        self.training = True
        self._x = self._col = None

    @property
    def out_shape(self):
        """(Ho, Wo) of the output frames (None when in_shape is not given)."""
        if self.in_shape is None:
            return None
        return tuple(out_size(n, self.k, self.stride, self.padding) for n in self.in_shape)

    def forward(self, x):
        if getattr(x, "ndim", 0) != 5 or x.shape[-1] != self.c_in:
            raise ValueError(f"{self!r} takes [T, B, H, W, {self.c_in}] (time-major, channels-last); "
                             f"got shape {getattr(x, 'shape', None)}")
        if self.in_shape is not None and tuple(x.shape[2:4]) != self.in_shape:
            raise ValueError(f"{self!r} was built for frames of in_shape {self.in_shape}, i.e. input "
                             f"[T, B, {self.in_shape[0]}, {self.in_shape[1]}, {self.c_in}]; got shape {x.shape}. "
                             "A channels-first [T, B, C, H, W] array must be moved to channels-last first.")
        if x.dtype.kind != "f":
            raise TypeError(f"{self!r}: x must be float32 or float64, got {x.dtype}")
        if x.size == 0:
            raise ValueError(f"{self!r}: x is empty (shape {x.shape})")
        T, B = x.shape[:2]
        frames = x.reshape((T * B,) + x.shape[2:])
        self._x = frames
        y, col = conv2d_forward(frames, self.params["weight"], self.stride, self.padding,
                                self.max_col_bytes, return_col=True)
        self._col = col if self.training else None   # eval: nothing to keep for a backward
        return y.reshape((T, B) + y.shape[1:])

    __call__ = forward

    def backward(self, grad_y, need_input_grad=True):
        """dL/dx, or None with ``need_input_grad=False`` (the first layer: its input is data, and
        the col2im is skipped)."""
        require_forward(self, self._x)
        T, B = grad_y.shape[:2]
        if T * B != self._x.shape[0] or grad_y.ndim != 5 or grad_y.shape[-1] != self.c_out:
            raise ValueError(f"grad_y must be [T, B, Ho, Wo, {self.c_out}] matching the forward output; got "
                             f"shape {grad_y.shape}")
        g = grad_y.reshape((T * B,) + grad_y.shape[2:])
        dx, dw = conv2d_backward(g, self._x, self.params["weight"], self.stride, self.padding,
                                 self.max_col_bytes, need_input_grad, self._col)
        self._col = None                             # free it: forward makes a new one
        self.grads["weight"][...] = dw
        return None if dx is None else dx.reshape((T, B) + dx.shape[1:])

    def __repr__(self):
        return f"Conv2d({self.c_in}, {self.c_out}, k={self.k}, stride={self.stride}, padding={self.padding})"
