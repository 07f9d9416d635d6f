"""The non-spiking leaky readout of S3GD.

    z[t] = S[t] W                    (S [B, T, N] spikes of the last hidden layer, W [N, C])
    out[t] = beta_r out[t-1] + (1 - beta_r) z[t]
    logits = max_t out[t]   (mode "max")   or   sum_t out[t]   (mode "sum", used for SHD)

Backward: dL/dout[t] is dL/dlogits at the arg-max step (max) or at every step (sum);
e = scan_backward(dL/dout, beta_r, 1 - beta_r) = dL/dz, dW = sum_t S[t]^T e[t], and
dL/dS[b,t,j] = sum_c W[j,c] e[b,t,c] — evaluated only at the active entries of the layer below in
sparse mode (C is small, so e [B, T, C] itself is cheap).

W is [N, C] (inputs x classes) like the LIF layers' [N_in, N] (lif.py says why).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, rng as host_rng, to_device, xp_of
from ..nn.protocol import require_forward
from .graph import StaticBuffers
from .lif import _saved, project
from .neuron import BETA, default_weight_scale
from .scan import scan_backward, scan_forward
from .sparse import ActiveGrad, linear_input_grad_at


class LeakyReadout:
    """``LeakyReadout(n_in, n_out, beta, mode)``: forward(S [B,T,n_in]) -> logits [B, n_out].
    ``beta`` = exp(-dt/tau_out), by default the hidden layers' :data:`~snnkit.s3gd.neuron.BETA`."""

    def __init__(self, n_in, n_out, beta=BETA, mode="max", *, weight_scale=None, seed=None,
                 dtype=np.float32, name="readout"):
        if mode not in ("max", "sum"):
            raise ValueError(f"mode must be 'max' or 'sum' (logits over time), got {mode!r}")
        beta = checks.in_range("beta", beta, 0, 1, hi_open=True, fix="beta = exp(-dt/tau_out).")
        n_in, n_out = checks.integer("n_in", n_in, 1), checks.integer("n_out", n_out, 1)
        if weight_scale is not None:
            weight_scale = checks.nonnegative("weight_scale", weight_scale)
        self.n_in, self.n_out, self.beta, self.mode = n_in, n_out, beta, mode
        self.dtype = checks.float_dtype("dtype", dtype)
        self.name = name
        ws = default_weight_scale(beta) if weight_scale is None else float(weight_scale)
        w = host_rng(seed).normal(0.0, ws / np.sqrt(n_in), size=(n_in, n_out))
        self.params = {"weight": to_device(w.astype(self.dtype))}
        self.grads = {"weight": xp_of(self.params["weight"]).zeros_like(self.params["weight"])}
        self._cache = None
        self.static_outputs = StaticBuffers()   # on only under Network(cuda_graph=True), graph.py

    def __repr__(self):
        return f"LeakyReadout({self.n_in}, {self.n_out}, beta={self.beta:.4g}, mode={self.mode!r})"

    def forward(self, s):
        W = self.params["weight"]
        xp = xp_of(W)
        s, z = project(self, s, "z")
        B, T, _ = s.shape
        buf = self.static_outputs.get
        out = scan_forward(z, self.beta, 1.0 - self.beta, out=buf("out", z.shape, W))
        if self.mode == "max":
            t_max = out.argmax(axis=1, out=buf("t_max", (B, self.n_out), W, np.int64))
            logits = xp.take_along_axis(out, t_max[:, None, :], axis=1)[:, 0]
        else:
            t_max, logits = None, out.sum(axis=1)
        self._cache = {"s": s, "out": out, "t_max": t_max}
        return logits

    __call__ = forward

    spikes_in = _saved("s", "The input spikes S [B, T, N] of the last forward.")

    @property
    def adjoint(self):
        """e = dL/dz [B, T, C] of the last backward (None before any); graph.py sets it to the
        array a replayed backward wrote."""
        return None if self._cache is None else self._cache.get("e")

    @adjoint.setter
    def adjoint(self, e):
        require_forward(self, self._cache)
        self._cache["e"] = e

    def backward_inputs(self) -> list:
        """The arrays of this layer that its backward reads (S, the arg-max steps, W), in a
        fixed order (graph.py keys a captured backward on their addresses)."""
        c = self._cache
        return [c["s"], c["t_max"], self.params["weight"]]

    def backward(self, grad_logits, need_input_grad=True, *, at=None, weight_grad=True):
        """dW (into ``grads["weight"]``, in place), and dL/dS: dense [B,T,N] (``at=None``), an
        ActiveGrad on the active set ``at``, or nothing (``need_input_grad=False``;
        :meth:`input_grad` can ask for it later). ``weight_grad=False`` leaves dW for a later
        :meth:`weight_grad` call (the sparse backward queues it on a side stream, beside hidden2's
        input gradient)."""
        c = self._cache
        require_forward(self, c)
        out = c["out"]
        xp = xp_of(out)
        B, T, C = out.shape
        grad_logits = xp.asarray(grad_logits, dtype=self.dtype)
        if is_cupy_array(out):                                         # the same, in one kernel
            from . import cuda
            e = cuda.readout_grad(grad_logits, c["t_max"], self.beta, 1.0 - self.beta, T)
        else:
            if self.mode == "max":
                at_max = xp.arange(T)[None, :, None] == c["t_max"][:, None, :]   # only the arg-max step
                gout = at_max * grad_logits[:, None, :]
            else:
                gout = xp.ascontiguousarray(xp.broadcast_to(grad_logits[:, None, :], out.shape))
            e = scan_backward(gout, self.beta, 1.0 - self.beta)        # dL/dz [B, T, C]
        c["e"] = e
        if weight_grad:
            self.weight_grad()
        return self.input_grad(at) if need_input_grad else None

    def weight_grad(self):
        """dW = sum_t S[t]^T e[t] from the last backward's e (on a GPU our kernel, not cuBLAS: it
        skips silent entries, and a CUDA graph can hold it, see graph.py)."""
        c = self._cache
        s, e = c["s"], c["e"]
        B, T, C = e.shape
        if is_cupy_array(e):
            from . import cuda
            cuda.readout_weight_grad(s, e, out=self.grads["weight"])
        else:
            self.grads["weight"][...] = s.reshape(B * T, self.n_in).T @ e.reshape(B * T, C)

    def input_grad(self, at=None):
        """dL/dS of the last backward: dense [B,T,N], or an ActiveGrad on the active set ``at``."""
        e = self._cache.get("e") if self._cache else None
        if e is None:
            raise RuntimeError(f"{self.name}: input_grad called before backward: run forward and backward first")
        W = self.params["weight"]
        if at is None:
            return e @ W.T
        return ActiveGrad(at, linear_input_grad_at(e, W, at))

    def train(self):
        return self

    def eval(self):
        return self
