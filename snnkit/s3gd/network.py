"""The network of the paper: input -> LIF(N) -> LIF(N) -> leaky readout, and its backward in
two modes on the same forward.

Dense mode: readout -> dL/dS2 [B,T,N] -> hidden2 BPTT -> dL/dS1 [B,T,N] -> hidden1 BPTT.
Sparse mode: the active sets A2, A1 are compacted first; the readout evaluates dL/dS2 only on A2,
hidden2 evaluates dL/dS1 only on A1, hidden1 needs no input gradient. Nothing [B,T,N]-shaped is
allocated by the backward. On a GPU it waits for the device once, at its end (the entry counts),
so Python queues the whole backward while the GPU works. With ``cuda_graph=True`` the queued
backward is captured once as a CUDA graph and replayed from one launch afterwards (graph.py):
the GPU then runs its ~30 small kernels back to back instead of at Python's pace.

DeadLayerGuard watches the sparse active fraction of every hidden layer at each training step and
warns (layer name, fraction) when it stays at or below ``min_fraction`` for ``patience`` steps:
with no entry near threshold the gradient is exactly zero and training silently stalls.
"""
from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np

from .. import checks
from ..backend import is_cupy_array
from ..nn.protocol import require_forward
from .graph import BackwardGraphs, Pass, StaticBuffers
from .lif import LIFDense
from .loss import ActivityRegularizer, S3GDLoss
from .neuron import LIFParameters
from .readout import LeakyReadout
from .sparse import compact, settle_layers


def _side_streams(weight):
    """The GPU's side streams (cuda.side_streams), None, None on NumPy (no CuPy import there)."""
    if not is_cupy_array(weight):
        return None, None
    from .cuda import side_streams
    return side_streams(weight)


def _copy_into(dst, src):
    """dst[...] = src for two CuPy arrays of one shape and dtype (dst contiguous), as one
    device-to-device copy on the current stream when src is contiguous: a few microseconds of host
    time where an elementwise copy kernel costs several times that, just before the graph's launch."""
    if src.flags.c_contiguous and src.dtype == dst.dtype:
        dst.data.copy_from_device_async(src.data, src.nbytes)
    else:
        dst[...] = src


class DeadNetworkWarning(RuntimeWarning):
    """A layer's sparse backward had (almost) no active entries for many consecutive steps."""


class DeadLayerGuard:
    def __init__(self, patience=20, min_fraction=0.0):
        self.patience, self.min_fraction = int(patience), float(min_fraction)
        self.quiet_steps: dict = {}
        self.warned: set = set()

    def update(self, name, fraction):
        """Record one step of layer ``name``; warns once per dead stretch. Returns True if dead."""
        if fraction <= self.min_fraction:
            k = self.quiet_steps.get(name, 0) + 1
            self.quiet_steps[name] = k
            if k >= self.patience and name not in self.warned:
                self.warned.add(name)
                warnings.warn(
                    f"S3GD layer {name!r}: active fraction {fraction:.3g} (<= {self.min_fraction:g}) for "
                    f"{k} consecutive training steps, so its sparse gradient is (almost) zero and the "
                    "network cannot recover. Increase delta, the input rate or the initial weight scale, "
                    "or train a few steps in dense mode (net.sparse = False).",
                    DeadNetworkWarning, stacklevel=3)
            return k >= self.patience
        self.quiet_steps[name] = 0
        self.warned.discard(name)
        return False


class Network:
    """``Network(n_in, n_hidden, n_out, beta, ...)``: forward(S_in [B,T,n_in]) -> logits [B,C].

    ``cuda_graph`` (GPU, sparse mode; also settable later): replay the backward as a CUDA graph; the
    gradients and active sets it leaves are overwritten by the next replay (copy what you keep).
    ``net.graphs`` counts captures and replays and holds the graphs' workspaces.

    The hidden neurons are one :class:`~snnkit.s3gd.neuron.LIFParameters` (``neuron=``, or the
    keywords ``beta``, ``threshold``, ``delta``, ``surrogate_scale``; the paper's by default)."""

    def __init__(self, n_in, n_hidden, n_out, beta=None, *, beta_out=None,
                 threshold=None, delta=None, sparse=True, readout="max",
                 regularizer: ActivityRegularizer | None = None, surrogate_scale=None,
                 weight_scale=None, readout_scale=None, seed=0, dtype=np.float32, guard=None,
                 cuda_graph=False, neuron: LIFParameters | None = None):
        for nm, v in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
            checks.integer(nm, v, 1)
        if neuron is None:
            loose = dict(beta=beta, threshold=threshold, delta=delta, surrogate_scale=surrogate_scale)
            neuron = LIFParameters(**{k: v for k, v in loose.items() if v is not None})
        elif any(v is not None for v in (beta, threshold, delta, surrogate_scale)):
            raise ValueError("pass the hidden neurons either as neuron=LIFParameters(...) or as the keywords "
                             "beta/threshold/delta/surrogate_scale, not both")
        kw = dict(neuron=neuron, sparse=sparse, weight_scale=weight_scale, dtype=dtype)
        ss = np.random.SeedSequence(seed).generate_state(3)
        self.hidden = [LIFDense(n_in, n_hidden, seed=int(ss[0]), name="hidden1", **kw),
                       LIFDense(n_hidden, n_hidden, seed=int(ss[1]), name="hidden2", **kw)]
        beta = neuron.beta
        self.readout = LeakyReadout(n_hidden, n_out, beta if beta_out is None else beta_out, readout,
                                    weight_scale=readout_scale, seed=int(ss[2]), dtype=dtype)
        self.layers = [*self.hidden, self.readout]
        self.regularizer = ActivityRegularizer() if regularizer is None else regularizer
        self.guard = DeadLayerGuard() if guard is None else guard
        self.reg_value = 0.0
        self.overflows = 0          # sparse backwards redone because an active set outgrew its arrays
        self.last_logits = None
        self.training = True
        self.graphs = BackwardGraphs()
        self.static_outputs = StaticBuffers()
        self.cuda_graph = cuda_graph         # GPU: replay the backward as a CUDA graph (graph.py)

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Network(\n  {inner}\n)"

    @property
    def cuda_graph(self) -> bool:
        return self._cuda_graph

    @cuda_graph.setter
    def cuda_graph(self, value: bool):
        """On: replay the sparse backward as a CUDA graph, and let the forward write into the same
        buffers every step (so that the graph's inputs stay put; see graph.StaticBuffers)."""
        self._cuda_graph = bool(value)
        for layer in (*self.layers, self):
            layer.static_outputs.on = self._cuda_graph

    @property
    def sparse(self) -> bool:
        return all(h.sparse for h in self.hidden)

    @sparse.setter
    def sparse(self, value: bool):
        for h in self.hidden:
            h.sparse = bool(value)

    @property
    def params(self) -> dict:
        """Every layer's trainable arrays as ``{"<layer>.<key>": array}`` (the layers' own arrays:
        optimizers walk ``layers``, this view is for the layer protocol and for inspection)."""
        return {f"{l.name}.{k}": p for l in self.layers for k, p in l.params.items()}

    @property
    def grads(self) -> dict:
        """The gradients of :attr:`params`, same keys; written in place by :meth:`backward`."""
        return {f"{l.name}.{k}": g for l in self.layers for k, g in l.grads.items()}

    @property
    def neuron(self) -> LIFParameters:
        """The hidden layers' neuron parameters."""
        return self.hidden[0].neuron

    @property
    def delta(self) -> float:
        return self.hidden[0].delta

    @delta.setter
    def delta(self, value: float):
        for h in self.hidden:
            h.delta = value                  # validated by LIFParameters; drops the active sets

    @property
    def counts(self) -> list:
        """Spikes per (sample, neuron) [B, N] of each hidden layer in the last forward."""
        return self._counts

    def loss(self):
        """The matching loss object (NLL + this network's regularizer value)."""
        return S3GDLoss(self)

    def forward(self, x):
        s = x
        for layer in self.hidden:
            s = layer.forward(s)
        logits = self.readout.forward(s)
        self.last_logits = logits
        S = [h.spikes for h in self.hidden]                                   # spikes per (b, j):
        self._counts = [s.sum(axis=1, out=self.static_outputs.get(f"counts{k}", (s.shape[0], s.shape[2]), s))
                        for k, s in enumerate(S)]
        self.reg_value = sum(self.regularizer.value_from_counts(c) for c in self._counts)
        return logits

    __call__ = forward

    name = "Network"

    def backward(self, grad_logits, need_input_grad=False, *, timer=None):
        """The gradients of all layers, into their ``grads`` (in place). Returns None: the
        network's input is data, so unlike a layer it computes no input gradient by default;
        ``need_input_grad=True`` returns dL/dS_in [B,T,n_in] (dense, the cost of a full first
        layer's input gradient). ``timer(name)``: optional context-manager factory wrapped around
        each step (profiling; a timed backward always runs eagerly). With ``cuda_graph`` on (GPU,
        sparse mode), the backward is a replay of a captured CUDA graph whenever its inputs allow
        (see graph.py): the active sets are then views of the graph's workspace, overwritten by
        its next replay."""
        require_forward(self, self.last_logits)
        if tuple(getattr(grad_logits, "shape", ())) != tuple(self.last_logits.shape):
            raise ValueError(f"grad_logits must have the logits' shape {tuple(self.last_logits.shape)}; got "
                             f"{tuple(getattr(grad_logits, 'shape', ()))}")
        step = timer or (lambda name: nullcontext())
        queue = self._queue_sparse if self.sparse else self._queue_dense
        state = None
        if need_input_grad:                          # a rare request: eager, the first layer dense
            state = Pass()
            state.input_grad = True
            queue(grad_logits, step, state)
        if state is None and self.cuda_graph and timer is None and self.graphs.usable(self):
            static = self.static_outputs.get("grad_logits", grad_logits.shape, grad_logits)
            if static is not None and static is not grad_logits:    # the loss's array is new every step
                _copy_into(static, grad_logits)
                grad_logits = static
            try:
                state = self.graphs.run(self, grad_logits, queue)
            except Exception as err:                 # never silently: say why, then run eagerly
                self.cuda_graph = False
                for h in self.hidden:
                    h.compaction.forget()            # sets of the failed capture were never filled
                warnings.warn(f"S3GD Network: capturing the backward as a CUDA graph failed ({err!r}); "
                              "cuda_graph is now False and the backward runs eagerly.", RuntimeWarning,
                              stacklevel=2)
        if state is None:
            state = Pass()
            queue(grad_logits, step, state)
            self.graphs.warm |= self.sparse
        if not self.sparse:
            return state.g_in
        while True:
            # After the first step nothing above waited for the GPU: the entry arrays were sized
            # from earlier counts, and the true counts are checked here, once. If a layer outgrew
            # its arrays, its capacity has grown and what used the active sets runs again.
            with step("compact"):
                if settle_layers(self.hidden):
                    break
            self.overflows += 1
            self._queue_sparse(grad_logits, step, state)
        if self.training:
            for h in self.hidden:
                self.guard.update(h.name, h.compaction.active.fraction)
        return state.g_in

    def _queue_sparse(self, grad_logits, step, state):
        """Queue the sparse backward up to (not including) settling the active sets' counts.
        Queued in the order the GPU needs it: the chain A2 -> hidden2's input gradient at A1 ->
        hidden1 on the current stream; beside it, on side streams (GPU), what the chain needs
        only later or never: the readout's e = dL/dz and the regularizer's terms (beside the
        compaction, which needs neither; the chain takes them over before the readout's gradient
        at A2), and hidden2's and the readout's weight gradients (each its own stream, so that
        neither waits for the other). ``state`` (a Pass) says what an earlier attempt already queued."""
        h1, h2 = self.hidden
        side, side_ro = _side_streams(self.readout.params["weight"])
        made = None
        if not state.readout_adjoint:
            with step(self.readout.name), (nullcontext() if side_ro is None else side_ro.run(grad_logits)):
                self.readout.backward(grad_logits, need_input_grad=False, weight_grad=False)
                state.r2, state.r1 = (self.regularizer.grad_from_counts(c) for c in self._counts[::-1])
                made = state.e_ready = None if side_ro is None else side_ro.mark()   # on side_ro's stream
            state.readout_adjoint = True
        with step("compact"):
            a1, a2 = compact(self.hidden, deferred=True)
        if made is not None:          # (a re-run after an overflow finds them made and waited for:
            side_ro.hand_over(made)   # its state's events may even belong to a graph's capture)
        with step(self.readout.name):              # its time adds to the first part
            g = self.readout.input_grad(a2)
        with step(h2.name):
            g = h2.backward(g, at=a1, grad_const=state.r2, side=side)
        if not state.readout_weight:   # needs e only; on its side stream it runs beside the chain
            with step(self.readout.name):
                if side_ro is None:
                    self.readout.weight_grad()
                else:
                    with side_ro.run(self.readout.adjoint, self.readout.spikes_in, after=state.e_ready):
                        self.readout.weight_grad()
            state.readout_weight = True
        with step(h1.name):
            state.g_in = h1.backward(g, need_input_grad=state.input_grad, grad_const=state.r1)
        if side is not None:
            with step("compact"):
                side.join()
                side_ro.join()

    def _queue_dense(self, grad_logits, step, state):
        h1, h2 = self.hidden
        state.r1, state.r2 = (self.regularizer.grad_from_counts(c) for c in self._counts)
        with step(self.readout.name):
            g = self.readout.backward(grad_logits)
        with step(h2.name):
            g = h2.backward(g, grad_const=state.r2)
        with step(h1.name):
            state.g_in = h1.backward(g, need_input_grad=state.input_grad, grad_const=state.r1)

    def spikes(self):
        """Spike rasters [B,T,N] of the hidden layers from the last forward."""
        return [h.spikes for h in self.hidden]

    def train(self, mode: bool = True):
        """Training mode (``mode=False``: evaluation): the dead-layer guard counts only training
        steps. Returns the network."""
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)
