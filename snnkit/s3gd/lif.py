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
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array, rng as host_rng, to_device, xp_of
from .graph import StaticBuffers
from .scan import scan_forward
from .sparse import (ActiveGrad, ActiveSet, active_sets, entry_grad, full_set, settle, sparse_input_grad,
                     sparse_weight_grad)


def fast_sigmoid_grad(v, threshold=1.0, scale=100.0):
    """sigma'(V - theta) = 1 / (scale |V - theta| + 1)^2."""
    xp = xp_of(v)
    den = scale * xp.abs(v - threshold) + 1
    return 1 / (den * den)


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
            sg = sg * (xp.abs(v - threshold) < band)
        gs = grad_s[:, t] if r is None else grad_s[:, t] + r
        acc = gs * sg + beta * acc
        d[:, t] = acc
    return d


CAPACITY_MARGIN = 1.5     # entry arrays get room for this times the largest count seen so far


def compact(layers, deferred=False) -> list:
    """The active sets of the layers' last forward, computing the missing ones together (one host
    synchronization on a GPU, however many layers).

    ``deferred`` (GPU): no synchronization at all once every layer has seen an earlier count; the
    sets are sized from it (:data:`CAPACITY_MARGIN` times the largest so far) and come back
    pending: call :func:`settle_layers` after queuing everything that uses them."""
    for layer in layers:
        if layer._cache is None:
            raise RuntimeError(f"{layer.name}: call forward before asking for the active set")
    todo = [layer for layer in layers if layer._active is None]
    caps = [l._capacity.get(tuple(l._cache["V"].shape)) for l in todo] if deferred else None
    if caps is not None and None in caps:          # a layer without an earlier count: count exactly
        caps = None
    found = active_sets([(l._cache["V"], l.threshold, l.delta) for l in todo], caps)
    for layer, A in zip(todo, found):
        layer._active = A
        if not A.pending:
            layer._remember_count(A.shape, A.n)
    return [layer._active for layer in layers]


def settle_layers(layers) -> bool:
    """Settle the layers' pending active sets (one transfer, which waits for the GPU). True if all
    fitted; otherwise the overflowed layers' sets are dropped (their capacity grown to fit) and
    the caller recomputes what used them."""
    sets = [l._active for l in layers]
    fits = True
    for layer, A, n in zip(layers, sets, settle(sets)):
        layer._remember_count(A.shape, n)
        if A.overflowed:
            layer._active, fits = None, False
    return fits


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


class LIFDense:
    """A fully connected LIF layer: forward(S_in [B,T,N_in]) -> S [B,T,N]; params["weight"] [N_in, N].

    backward(grad, at=None, grad_const=None):
      * ``grad``: dL/dS, a dense [B,T,N] array or an :class:`ActiveGrad` on this layer's active set;
      * ``at``: None -> returns the dense dL/dS_in [B,T,N_in]; an :class:`ActiveSet` of the layer
        below -> returns an ActiveGrad there (what a network passes down in sparse mode);
        False -> returns None (first layer: no input gradient needed);
      * ``grad_const`` [B,N]: added to dL/dS at every step (the activity regularizer's gradient).
    """

    def __init__(self, n_in, n_out, beta, threshold=1.0, delta=0.2, sparse=True, *,
                 surrogate_scale=100.0, truncate=False, smooth=None, weight_scale=None,
                 weight_mean=0.0, seed=None, dtype=np.float32, name=None):
        n_in = checks.integer("n_in", n_in, 1)
        n_out = checks.integer("n_out", n_out, 1)
        beta = checks.in_range("beta", beta, 0, 1, hi_open=True, fix="beta = exp(-dt/tau_mem).")
        threshold = checks.positive("threshold", threshold, "The spike threshold must be a positive, finite number.")
        delta = checks.positive("delta", delta, "It is the half-width of the active band |V - threshold| < delta.")
        surrogate_scale = checks.positive("surrogate_scale", surrogate_scale)
        if weight_scale is not None:
            weight_scale = checks.nonnegative("weight_scale", weight_scale)
        weight_mean = checks.number("weight_mean", weight_mean)
        if smooth is not None:
            smooth = checks.positive("smooth", smooth, "It is the sigmoid's slope k (None: Heaviside spikes).")
        dtype = checks.float_dtype("dtype", dtype)
        if smooth is not None and sparse:
            raise ValueError("smooth=k (sigmoid spikes) is a dense-only checking mode; pass sparse=False")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.beta, self.threshold, self.delta = float(beta), float(threshold), float(delta)
        self.sparse, self.truncate, self.smooth = bool(sparse), bool(truncate), smooth
        self.scale = float(surrogate_scale)
        self.dtype = np.dtype(dtype)
        self.name = name or f"LIFDense({n_in}->{n_out})"
        ws = 7.0 * (1.0 - beta) if weight_scale is None else float(weight_scale)
        w = host_rng(seed).normal(weight_mean, ws / np.sqrt(n_in), size=(n_in, n_out))
        self.params = {"weight": to_device(w.astype(self.dtype))}
        self.grads = {"weight": xp_of(self.params["weight"]).zeros_like(self.params["weight"])}
        self._cache = None
        self._active = None
        self._capacity = {}        # (B, T, N) -> entry-array capacity for deferred compaction
        self.static_outputs = StaticBuffers()   # on only under Network(cuda_graph=True), graph.py

    def _remember_count(self, shape, n):
        B, T, N = shape
        cap = min(B * T * N, max(1024, int(CAPACITY_MARGIN * n)))
        if cap > self._capacity.get(tuple(shape), -1):
            self._capacity[tuple(shape)] = cap

    def __repr__(self):
        mode = "sparse" if self.sparse else "dense"
        return (f"{type(self).__name__}({self.n_in}, {self.n_out}, beta={self.beta:.4g}, "
                f"delta={self.delta}, {mode}, name={self.name!r})")

    # -- forward --------------------------------------------------------------------------------
    def forward(self, s_in, reset_from=None):
        W = self.params["weight"]
        xp = xp_of(W)
        s_in = check_input(s_in, self.n_in, self.name, self.dtype, xp)
        B, T, _ = s_in.shape
        buf = self.static_outputs.get
        h = xp.matmul(s_in.reshape(B * T, self.n_in), W, out=buf("h", (B * T, self.n_out), W)).reshape(B, T, self.n_out)
        VS = (buf("V", h.shape, W), buf("S", h.shape, W)) if self.static_outputs.on else None
        V, S = lif_simulate(h, self.beta, self.threshold, self.smooth, reset_from, VS)
        trace = scan_forward(s_in, self.beta, out=buf("trace", s_in.shape, W)) if self.sparse else None
        self._cache = {"s_in": s_in, "V": V, "S": S, "trace": trace}
        self._active = None
        return S

    __call__ = forward

    @property
    def V(self):
        return None if self._cache is None else self._cache["V"]

    def active_set(self) -> ActiveSet:
        """The entries |V - threshold| < delta of the last forward (computed once, then cached)."""
        return compact([self])[0]

    # -- backward -------------------------------------------------------------------------------
    def backward(self, grad, at=None, grad_const=None, side=None):
        """``side``: a :class:`snnkit.s3gd.cuda.SideStream` for the sparse weight gradient (GPU)."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward: run forward on the batch first")
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
        self.grads["weight"] = c["s_in"].reshape(B * T, self.n_in).T @ d2
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
            self.grads["weight"] = sparse_weight_grad(g, A, c["trace"])
        else:
            with side.run(g, A, c["trace"], after=ready):    # beside the input gradient, not after it
                self.grads["weight"] = sparse_weight_grad(g, A, c["trace"])
        return out

    def train(self):
        return self

    def eval(self):
        return self
