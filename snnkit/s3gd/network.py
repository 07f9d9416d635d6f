"""The network of the paper: input -> LIF(N) -> LIF(N) -> leaky readout, and its backward in
two modes on the same forward.

Dense mode: readout -> dL/dS2 [B,T,N] -> hidden2 BPTT -> dL/dS1 [B,T,N] -> hidden1 BPTT.
Sparse mode: the active sets A2, A1 are compacted first; the readout evaluates dL/dS2 only on A2,
hidden2 evaluates dL/dS1 only on A1, hidden1 needs no input gradient. Nothing [B,T,N]-shaped is
allocated by the backward. On a GPU it waits for the device once, at its end (the entry counts),
so Python queues the whole backward while the GPU works.

DeadLayerGuard watches the sparse active fraction of every hidden layer at each training step and
warns (layer name, fraction) when it stays at or below ``min_fraction`` for ``patience`` steps:
with no entry near threshold the gradient is exactly zero and training silently stalls.
"""
from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np

from ..backend import is_cupy_array
from .lif import LIFDense, compact, settle_layers
from .loss import ActivityRegularizer, S3GDLoss
from .readout import LeakyReadout


def _side_streams(weight):
    """The GPU's two side streams for the sparse backward (None, None on NumPy); one pair per process."""
    if not is_cupy_array(weight):
        return None, None
    if not _SIDE:
        from .cuda import SideStream
        _SIDE.extend([SideStream(), SideStream()])
    return _SIDE[0], _SIDE[1]


_SIDE: list = []


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
    """``Network(n_in, n_hidden, n_out, beta, ...)``: forward(S_in [B,T,n_in]) -> logits [B,C]."""

    def __init__(self, n_in, n_hidden, n_out, beta=float(np.exp(-1 / 10)), *, beta_out=None,
                 threshold=1.0, delta=0.2, sparse=True, readout="max",
                 regularizer: ActivityRegularizer | None = None, surrogate_scale=100.0,
                 weight_scale=None, readout_scale=None, seed=0, dtype=np.float32, guard=None):
        kw = dict(threshold=threshold, delta=delta, sparse=sparse, surrogate_scale=surrogate_scale,
                  weight_scale=weight_scale, dtype=dtype)
        ss = np.random.SeedSequence(seed).generate_state(3)
        self.hidden = [LIFDense(n_in, n_hidden, beta, seed=int(ss[0]), name="hidden1", **kw),
                       LIFDense(n_hidden, n_hidden, beta, seed=int(ss[1]), name="hidden2", **kw)]
        self.readout = LeakyReadout(n_hidden, n_out, beta if beta_out is None else beta_out, readout,
                                    weight_scale=readout_scale, seed=int(ss[2]), dtype=dtype)
        self.layers = [*self.hidden, self.readout]
        self.regularizer = ActivityRegularizer() if regularizer is None else regularizer
        self.guard = DeadLayerGuard() if guard is None else guard
        self.reg_value = 0.0
        self.overflows = 0          # sparse backwards redone because an active set outgrew its arrays
        self.last_logits = None
        self.training = True

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Network(\n  {inner}\n)"

    @property
    def sparse(self) -> bool:
        return all(h.sparse for h in self.hidden)

    @sparse.setter
    def sparse(self, value: bool):
        for h in self.hidden:
            h.sparse = bool(value)

    @property
    def delta(self) -> float:
        return self.hidden[0].delta

    @delta.setter
    def delta(self, value: float):
        if not value > 0:
            raise ValueError(f"delta must be > 0, got {value}")
        for h in self.hidden:
            h.delta = float(value)
            h._active = None

    def loss(self):
        """The matching loss object (NLL + this network's regularizer value)."""
        return S3GDLoss(self)

    def forward(self, x):
        s = x
        for layer in self.hidden:
            s = layer.forward(s)
        logits = self.readout.forward(s)
        self.last_logits = logits
        self._counts = [h._cache["S"].sum(axis=1) for h in self.hidden]     # spikes per (b, j)
        self.reg_value = sum(self.regularizer.value_from_counts(c) for c in self._counts)
        return logits

    __call__ = forward

    def backward(self, grad_logits, timer=None):
        """``timer(name)``: optional context-manager factory wrapped around each step (profiling)."""
        step = timer or (lambda name: nullcontext())
        h1, h2 = self.hidden
        if self.sparse:
            # Queued in the order the GPU needs it: the chain readout -> A2 -> hidden2's input
            # gradient at A1 -> hidden1 first; hidden2's and the readout's weight gradients,
            # which nothing waits on, on side streams beside it (GPU; each its own, so that
            # neither waits for the other).
            side, side_ro = _side_streams(self.readout.params["weight"])
            with step(self.readout.name):
                self.readout.backward(grad_logits, at=False, weight_grad=False)
                e_ready = None if side is None else side.mark()
            r2 = self.regularizer.grad_from_counts(self._counts[1])
            r1, readout_queued = None, False
            while True:
                # On a GPU, after the first step, nothing below waits for the GPU until settle:
                # the entry arrays are sized from earlier counts, and the true counts are checked
                # once everything is queued. If a layer outgrew its arrays, its capacity has grown
                # and the part that used the active sets runs again (at most once more).
                with step("compact"):
                    a1, a2 = compact(self.hidden, deferred=True)
                with step(self.readout.name):              # its time adds to the first part
                    g = self.readout.input_grad(a2)
                with step(h2.name):
                    g = h2.backward(g, at=a1, grad_const=r2, side=side)
                if not readout_queued:      # needs e only; queued once the chain's long kernels are,
                    with step(self.readout.name):   # it runs beside them (a ~0.1 ms GEMM)
                        if side_ro is None:
                            self.readout.weight_grad()
                        else:
                            with side_ro.run(self.readout._cache["e"], self.readout._cache["s"], after=e_ready):
                                self.readout.weight_grad()
                    readout_queued = True
                if r1 is None:
                    r1 = self.regularizer.grad_from_counts(self._counts[0])
                with step(h1.name):
                    h1.backward(g, at=False, grad_const=r1)
                with step("compact"):
                    if side is not None:
                        side.join()
                        side_ro.join()
                    if settle_layers(self.hidden):
                        break
                self.overflows += 1
            if self.training:
                for h, a in ((h1, a1), (h2, a2)):
                    self.guard.update(h.name, a.fraction)
        else:
            r1, r2 = (self.regularizer.grad_from_counts(c) for c in self._counts)
            with step(self.readout.name):
                g = self.readout.backward(grad_logits)
            with step(h2.name):
                g = h2.backward(g, grad_const=r2)
            with step(h1.name):
                h1.backward(g, at=False, grad_const=r1)
        return None

    def spikes(self):
        """Spike rasters [B,T,N] of the hidden layers from the last forward."""
        return [h._cache["S"] for h in self.hidden]

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self
