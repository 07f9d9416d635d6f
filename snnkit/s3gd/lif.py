r"""Discrete-time current-based LIF layer of S3GD (Perez-Nieves & Goodman, NeurIPS 2021).

Model, per layer (input spikes S_in [B, T, N_in], weights W [N_in, N], threshold theta = 1):

    h[t] = S_in[t] W
    V[t] = beta V[t-1] + h[t] - S[t-1]            V[-1] = 0, S[-1] = 0
    S[t] = H(V[t] - theta)

with beta = exp(-dt / tau_mem). The reset (-S[t-1]) is *detached*: it shapes the forward pass but
carries no gradient. (The paper writes V[t+1] = beta V[t] + h[t] - S[t], i.e. one step of delay
per layer; snnkit lets h[t] act on V[t], which only shifts every layer's output by one step.)

Backward (BPTT). The spike's derivative is replaced by the fast-sigmoid surrogate

    dS/dV ~ sigma'(V - theta) = 1 / (scale |V - theta| + 1)^2          scale = 100

    g[t] = dL/dS[t] sigma'(V[t] - theta)
    d[t] = dL/dh[t] = g[t] + beta d[t+1]           (no -sigma' term: the reset is detached)
    dW = sum_{b,t} S_in[t]^T d[t]          dL/dS_in[t] = d[t] W^T

``sparse=False`` runs exactly that (optionally with the surrogate truncated to the band
|V - theta| < delta: ``truncate=True``). ``sparse=True`` keeps g only on that band and never forms
the dense d; see sparse.py. ``smooth=k`` replaces the Heaviside by sigmoid(k (V - theta)) and the
surrogate by its exact derivative: a smooth model whose gradient finite differences can check.

Input: the first layer's S_in may be graded (any finite real values, e.g. an analog current
injection) rather than 0/1 spikes: h = S_in W and the trace tr = scan(S_in, beta) are linear in
S_in, so the dense and the sparse gradient above are the same exact formulas for graded input
(tests/test_bad_input_s3gd.py checks them against each other). NaN/Inf are rejected on NumPy;
on a GPU the forward does not synchronize to look, and the Trainer's per-step check of the model
input catches them instead.

Layout: W is [N_in, N] (inputs x neurons), not [n_out, n_in] as in BATS and STBP, because every
product of S3GD has the time-major activity on the left: h = S_in W over the rows (b, t), the
sparse weight gradient writes dW[i, j] with i fastest along one trace row per entry, and the
sparse input gradient reads W[i, j_e] along a row of W per input i (kernels/s3gd_sparse_backward.cu
stages that row in shared memory). Transposing would turn those reads into strided ones or cost a
transposed copy per step; the layer protocol (params/grads dicts) does not depend on the layout.

Where things are: the neuron's parameters and the formulas it shares with every path (surrogate,
band) are in neuron.py; the active set, its compaction schedule and the sparse backward in
sparse.py; the CUDA launchers and side streams in cuda.py; the CUDA-graph buffers in graph.py.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, rng as host_rng, to_device, xp_of
from ..nn.protocol import require_forward
from .graph import StaticBuffers
from .neuron import LIFParameters, default_weight_scale, fast_sigmoid_grad, in_band
from .scan import scan_forward
from .sparse import (ActiveGrad, ActiveSet, Compaction, compact, entry_grad, full_set, sparse_input_grad,
                     sparse_weight_grad)

__all__ = ["LIFDense", "lif_simulate", "lif_delta_dense", "check_input", "fast_sigmoid_grad"]


def _spike(v, threshold, smooth):
    xp = xp_of(v)
    if smooth is None:
        return (v - threshold >= 0).astype(v.dtype)
    return 1 / (1 + xp.exp(-smooth * (v - threshold)))


def lif_simulate(h, beta, threshold=1.0, smooth=None, reset_from=None, out=None):
    """Run the LIF dynamics on input currents h [B, T, N] -> (V, S), both [B, T, N].

    ``reset_from``: a fixed [B, T, N] spike array to subtract instead of the layer's own spikes
    (the finite-difference tests freeze the reset this way, which is what "detached" means).
    ``out``: (V, S) CuPy arrays to write into (the static buffers of graph.py)."""
    if is_cupy_array(h) and smooth is None and reset_from is None:
        from . import cuda
        return cuda.lif_forward(h, beta, threshold, out)
    xp = xp_of(h)
    V, S = xp.empty_like(h), xp.empty_like(h)
    v = xp.zeros_like(h[:, 0])
    s = xp.zeros_like(h[:, 0])
    for t in range(h.shape[1]):
        if reset_from is not None:
            s = reset_from[:, t - 1] if t else xp.zeros_like(s)
        v = beta * v + h[:, t] - s
        s = _spike(v, threshold, smooth)
        V[:, t], S[:, t] = v, s
    return V, S


def lif_delta_dense(grad_s, V, beta, threshold=1.0, scale=100.0, band=None, r=None, smooth=None):
    """Dense BPTT: d = dL/dh [B, T, N] from dL/dS and the saved V.

    ``r`` [B, N] is added to dL/dS at every step; ``band`` truncates the surrogate to
    |V - theta| < band; ``smooth`` uses the sigmoid's exact derivative."""
    if is_cupy_array(V) and smooth is None:
        from . import cuda
        return cuda.lif_delta_dense(grad_s, V, r, beta, threshold, scale, band)
    xp = xp_of(V)
    d = xp.empty_like(V)
    acc = xp.zeros_like(V[:, 0])
    for t in range(V.shape[1] - 1, -1, -1):
        v = V[:, t]
        if smooth is None:
            sg = fast_sigmoid_grad(v, threshold, scale)
        else:
            s = _spike(v, threshold, smooth)
            sg = smooth * s * (1 - s)
        if band is not None:
            sg = sg * in_band(v, threshold, band)
        gs = grad_s[:, t] if r is None else grad_s[:, t] + r
        acc = gs * sg + beta * acc
        d[:, t] = acc
    return d


def check_input(s_in, n_in, name, dtype, xp):
    """``s_in`` [B, T, n_in] (B, T >= 1, real, finite on NumPy) as an ``xp`` array of ``dtype``."""
    if getattr(s_in, "ndim", 0) != 3 or s_in.shape[2] != n_in:
        raise ValueError(f"{name}: input must be [batch, time, {n_in}] spikes; got shape "
                         f"{tuple(getattr(s_in, 'shape', ()))}. Encode the data first (e.g. log_latency).")
    if s_in.shape[0] < 1 or s_in.shape[1] < 1:
        raise ValueError(f"{name}: input has shape {tuple(s_in.shape)}; it needs at least one sample and one "
                         "time step (batch >= 1, time >= 1)")
    if s_in.dtype.kind not in "biuf":
        raise TypeError(f"{name}: input must be real numbers (0/1 spikes or graded values); got dtype {s_in.dtype}")
    s_in = xp.asarray(s_in, dtype=dtype)
    if xp is np and not checks.all_finite(s_in):
        raise ValueError(f"{name}: input contains NaN or Inf; a NaN input never crosses threshold and would train "
                         "silently at chance. Check the data and the encoder.")
    return s_in


def project(layer, s, buffer_name):
    """The input check and the linear map every S3GD layer starts with: ``s`` [B, T, n_in] as the
    layer's array type and dtype, and ``s W`` [B, T, n_out] (into the layer's static buffer
    ``buffer_name`` under a CUDA graph, see graph.StaticBuffers)."""
    W = layer.params["weight"]
    xp = xp_of(W)
    s = check_input(s, layer.n_in, layer.name, layer.dtype, xp)
    B, T, _ = s.shape
    out = layer.static_outputs.get(buffer_name, (B * T, layer.n_out), W)
    return s, xp.matmul(s.reshape(B * T, layer.n_in), W, out=out).reshape(B, T, layer.n_out)


def _saved(key, doc):
    """A read-only view of what the last forward saved (None before any forward)."""
    return property(lambda self: None if self._cache is None else self._cache[key], doc=doc)


class LIFDense:
    """A fully connected LIF layer: forward(S_in [B,T,N_in]) -> S [B,T,N]; params["weight"] [N_in, N]
    (inputs x neurons, see the module docstring for why).

    The neuron is ``layer.neuron``, a frozen :class:`~snnkit.s3gd.neuron.LIFParameters`: pass it
    as ``neuron=``, or pass ``beta``, ``threshold``, ``delta``, ``surrogate_scale`` (defaults: the
    paper's). ``layer.beta`` etc. read it; setting ``layer.delta`` replaces it.

    backward(grad, need_input_grad=True, *, at=None, grad_const=None, side=None):
      * ``grad``: dL/dS, a dense [B,T,N] array or an :class:`ActiveGrad` on this layer's active set;
      * ``need_input_grad=False``: no input gradient (first layer), returns None;
      * ``at``: None -> returns the dense dL/dS_in [B,T,N_in]; an :class:`ActiveSet` of the layer
        below -> returns an ActiveGrad there (what a network passes down in sparse mode);
      * ``grad_const`` [B,N]: added to dL/dS at every step (the activity regularizer's gradient);
      * ``side``: a :class:`snnkit.s3gd.cuda.SideStream` for the sparse weight gradient (GPU).
    The weight gradient is written into ``grads["weight"]`` in place.
    """

    def __init__(self, n_in, n_out, beta=None, threshold=None, delta=None, sparse=True, *,
                 surrogate_scale=None, neuron: LIFParameters | None = None, truncate=False, smooth=None,
                 weight_scale=None, weight_mean=0.0, seed=None, dtype=np.float32, name=None):
        n_in = checks.integer("n_in", n_in, 1)
        n_out = checks.integer("n_out", n_out, 1)
        loose = dict(beta=beta, threshold=threshold, delta=delta, surrogate_scale=surrogate_scale)
        if neuron is None:
            neuron = LIFParameters(**{k: v for k, v in loose.items() if v is not None})
        elif not isinstance(neuron, LIFParameters):
            raise TypeError(f"neuron must be a snnkit.s3gd.LIFParameters, got {type(neuron).__name__}")
        elif any(v is not None for v in loose.values()):
            given = ", ".join(k for k, v in loose.items() if v is not None)
            raise ValueError(f"pass the neuron either as neuron=LIFParameters(...) or as keywords, not both "
                             f"(got neuron= and {given}); use neuron.replace({given.split(',')[0]}=...)")
        if weight_scale is not None:
            weight_scale = checks.nonnegative("weight_scale", weight_scale)
        weight_mean = checks.number("weight_mean", weight_mean)
        if smooth is not None:
            smooth = checks.positive("smooth", smooth, "It is the sigmoid's slope k (None: Heaviside spikes).")
        dtype = checks.float_dtype("dtype", dtype)
        if smooth is not None and sparse:
            raise ValueError("smooth=k (sigmoid spikes) is a dense-only checking mode; pass sparse=False")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.neuron = neuron
        self.sparse, self.truncate, self.smooth = bool(sparse), bool(truncate), smooth
        self.dtype = np.dtype(dtype)
        self.name = name or f"LIFDense({n_in}->{n_out})"
        ws = default_weight_scale(neuron.beta) if weight_scale is None else float(weight_scale)
        w = host_rng(seed).normal(weight_mean, ws / np.sqrt(n_in), size=(n_in, n_out))
        self.params = {"weight": to_device(w.astype(self.dtype))}
        self.grads = {"weight": xp_of(self.params["weight"]).zeros_like(self.params["weight"])}
        self._cache = None
        self.compaction = Compaction()          # the active set of the last forward, capacities
        self.static_outputs = StaticBuffers()   # on only under Network(cuda_graph=True), graph.py

    # -- the neuron's parameters (one frozen object) ---------------------------------------------
    @property
    def beta(self) -> float:
        return self.neuron.beta

    @property
    def threshold(self) -> float:
        return self.neuron.threshold

    @property
    def delta(self) -> float:
        return self.neuron.delta

    @delta.setter
    def delta(self, value):
        """A new band half-width: the active set of the last forward no longer holds."""
        self.neuron = self.neuron.replace(delta=value)
        self.compaction.forget()

    @property
    def scale(self) -> float:
        """The fast sigmoid's steepness (``neuron.surrogate_scale``)."""
        return self.neuron.surrogate_scale

    def __repr__(self):
        mode = "sparse" if self.sparse else "dense"
        return (f"{type(self).__name__}({self.n_in}, {self.n_out}, beta={self.beta:.4g}, "
                f"delta={self.delta}, {mode}, name={self.name!r})")

    # -- forward --------------------------------------------------------------------------------
    def forward(self, s_in, reset_from=None):
        W = self.params["weight"]
        s_in, h = project(self, s_in, "h")
        buf = self.static_outputs.get
        VS = (buf("V", h.shape, W), buf("S", h.shape, W)) if self.static_outputs.on else None
        V, S = lif_simulate(h, self.beta, self.threshold, self.smooth, reset_from, VS)
        trace = scan_forward(s_in, self.beta, out=buf("trace", s_in.shape, W)) if self.sparse else None
        self._cache = {"s_in": s_in, "V": V, "S": S, "trace": trace}
        self.compaction.forget()
        return S

    __call__ = forward

    # -- what the last forward saved (read by the network, graph.py, instruments, widgets) ------
    V = _saved("V", "Membrane potential [B, T, N] of the last forward.")
    spikes = _saved("S", "Output spikes S [B, T, N] of the last forward.")
    input = _saved("s_in", "The input S_in [B, T, N_in] of the last forward, as the layer's dtype and array type.")
    trace = _saved("trace", "Input trace tr = scan(S_in, beta) [B, T, N_in] (sparse mode; None until needed).")

    def backward_inputs(self) -> list:
        """Every array of this layer that its backward reads, in a fixed order (V, W, and the
        trace, or S_in from which the backward builds it): graph.py keys a captured backward on
        their addresses."""
        tr = self.trace
        return [self.V, self.params["weight"], tr if tr is not None else self.input]

    def active_set(self) -> ActiveSet:
        """The entries |V - threshold| < delta of the last forward (computed once, then cached)."""
        return compact([self])[0]

    # -- backward -------------------------------------------------------------------------------
    def backward(self, grad, need_input_grad=True, *, at=None, grad_const=None, side=None):
        require_forward(self, self._cache)
        if not need_input_grad:
            at = False
        if self.sparse:
            return self._backward_sparse(grad, at, grad_const, side)
        return self._backward_dense(grad, at, grad_const)

    def _backward_dense(self, grad, at, grad_const):
        if isinstance(grad, ActiveGrad):
            grad = grad.active.scatter(grad.values)
        c = self._cache
        B, T, _ = c["V"].shape
        d = lif_delta_dense(grad, c["V"], self.beta, self.threshold, self.scale,
                            self.delta if self.truncate else None, grad_const, self.smooth)
        W = self.params["weight"]
        d2 = d.reshape(B * T, self.n_out)
        self.grads["weight"][...] = c["s_in"].reshape(B * T, self.n_in).T @ d2
        if at is False:
            return None
        g_in = (d2 @ W.T).reshape(B, T, self.n_in)
        return g_in if at is None else ActiveGrad(at, at.gather(g_in))

    def _backward_sparse(self, grad, at, grad_const, side=None):
        c = self._cache
        A = self.active_set()
        if isinstance(grad, ActiveGrad):
            if grad.active is not A:
                raise ValueError(f"{self.name}: the ActiveGrad passed to backward belongs to another "
                                 "active set; pass this layer's own (layer.active_set()) or a dense array")
            gs = grad.values
        else:
            if tuple(grad.shape) != tuple(c["V"].shape):
                raise ValueError(f"{self.name}: grad must have shape {tuple(c['V'].shape)}, got {tuple(grad.shape)}")
            gs = A.gather(grad)
        g = entry_grad(gs, A, grad_const, self.threshold, self.scale)
        if c["trace"] is None:                     # forward ran in dense mode: build the trace now
            c["trace"] = scan_forward(c["s_in"], self.beta)
        W = self.params["weight"]
        ready = None if side is None else side.mark()   # g is all the weight gradient needs
        out = None                                 # the input gradient first: the layer below waits on it
        if at is None:                             # dense input gradient: every input entry asked
            B, T, _ = c["s_in"].shape
            Q = full_set((B, T, self.n_in), xp_of(W))
            vals = sparse_input_grad(g, A, Q, W, self.beta)
            out = vals.reshape(B, self.n_in, T).transpose(0, 2, 1).copy()
        elif at is not False:
            out = ActiveGrad(at, sparse_input_grad(g, A, at, W, self.beta))
        if side is None:
            sparse_weight_grad(g, A, c["trace"], out=self.grads["weight"])
        else:
            with side.run(g, A, c["trace"], after=ready):    # beside the input gradient, not after it
                sparse_weight_grad(g, A, c["trace"], out=self.grads["weight"])
        return out

    def train(self):
        return self

    def eval(self):
        return self
