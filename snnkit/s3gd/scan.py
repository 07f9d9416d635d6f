"""The linear leaky filter that S3GD uses twice, and its adjoint.

    y[t] = a y[t-1] + c x[t],  y[-1] = 0                      (along axis 1 of x [B, T, N])

* input trace of a LIF layer: a = beta, c = 1. The weight gradient of a LIF layer whose reset is
  detached is dW_ij = sum_{b,t} g[b,t,j] tr[b,t,i] with tr = scan(S_in, beta), so the sparse
  backward only needs tr at its active entries.
* leaky readout: a = beta_r, c = 1 - beta_r.

Adjoint (reverse time):  e[t] = gy[t] + a e[t+1],  dL/dx[t] = c e[t].
On CuPy arrays the fused kernels of ``kernels/s3gd_forward.cu`` / ``s3gd_dense_backward.cu`` run.
"""
from __future__ import annotations

from ..backend import is_cupy_array, xp_of


def _check(x, name):
    if x.ndim != 3:
        raise ValueError(f"{name} must be [batch, time, neurons]; got shape {tuple(x.shape)}")


def scan_forward(x, a, c=1.0, out=None):
    """``out``: a CuPy array to write y into (the static buffers of graph.py); NumPy ignores it."""
    _check(x, "x")
    if is_cupy_array(x):
        from . import cuda
        return cuda.scan_forward(x, a, c, out)
    xp = xp_of(x)
    y = xp.empty_like(x)
    acc = xp.zeros_like(x[:, 0])
    for t in range(x.shape[1]):
        acc = a * acc + c * x[:, t]
        y[:, t] = acc
    return y


def scan_backward(gy, a, c=1.0):
    _check(gy, "gy")
    if is_cupy_array(gy):
        from . import cuda
        return cuda.scan_backward(gy, a, c)
    xp = xp_of(gy)
    gx = xp.empty_like(gy)
    e = xp.zeros_like(gy[:, 0])
    for t in range(gy.shape[1] - 1, -1, -1):
        e = gy[:, t] + a * e
        gx[:, t] = c * e
    return gx
