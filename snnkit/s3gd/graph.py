"""CUDA graphs of the sparse backward: queue it once, then replay it with one launch.

Why: on a GPU the sparse backward of the SHD network is ~30 small kernels and ~25 allocations.
Their GPU work (~0.4 ms) is shorter than the time Python needs to issue them (8-12 us each), so
the GPU idles between them. Stream capture records the queued work once as a graph; a replay
issues all of it from one call and the GPU runs it back to back. Every kernel of the sparse
backward is ours (even the readout's weight GEMM, cuda.readout_weight_grad): CuPy refuses to
record cuBLAS calls into a graph. The dense backward is bound by its cuBLAS GEMMs on the GPU,
not by launches, so it always runs eagerly.

What a replay assumes, and how it is kept true:

* Kernel arguments are baked into the graph: the device pointers, shapes and dtypes of every
  array the backward reads (listed by :func:`backward_inputs`: the forward's V and traces, the
  spike counts, the weights, dL/dlogits), the scalars (beta, threshold, delta, surrogate scale,
  regularizer) and the active sets' capacities. A graph is stored under all of them
  (:func:`fingerprint`), so it only replays on exactly the arrays it was captured on. A key is
  captured the second time it is seen (a capture costs more than an eager backward, so a key
  seen once, as in a training loop whose forward allocates fresh arrays every step, is never
  captured); the last ``max_graphs`` graphs are kept.
* Everything the captured backward allocated (entry arrays, the readout's adjoint, temporaries)
  is held by the graph's :class:`snnkit.capture.Workspace` for the graph's life, since every replay writes into
  it. Hence after a replay the active sets are *views of that workspace*: the next replay of the
  same graph overwrites them. The weight gradients are written into the layers' own
  ``grads["weight"]`` arrays (the layer protocol: in place, never rebound), whose addresses are
  part of the key; like after an eager backward, the next backward overwrites them (copy what
  you keep, as ``weight_gradients`` in instruments.py does).
* Nothing in a graph waits for the host. The active sets' counts are checked after every replay
  exactly as in the eager backward (``settle_layers``): an overflowed layer's part is re-run
  eagerly with a grown capacity, and the grown capacity makes the next step's key new.
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from contextlib import nullcontext

from ..backend import is_cupy_array
from ..capture import capture
from .sparse import ActiveSet

_PATCHABLE = ("forward", "backward", "input_grad", "weight_grad")


class StaticBuffers:
    """Arrays a layer's forward writes into, the same ones every step, so that the backward's
    inputs keep their addresses from step to step and its graph keeps replaying in a training
    loop (a fresh allocation per forward would land elsewhere, and every step would need a new
    capture). On (``on = True``) only under ``Network(cuda_graph=True)`` on a GPU: the forward's
    outputs (V, spikes, traces) are then overwritten by the next forward. Off, :meth:`get`
    returns None (allocate as usual)."""

    def __init__(self, max_shapes=8):
        self.on, self.max_shapes, self.arrays = False, int(max_shapes), {}

    def get(self, name, shape, like, dtype=None):
        """The buffer ``name`` of this shape on ``like``'s device, of ``dtype`` (default: like's);
        None when off or on NumPy."""
        if not self.on or not is_cupy_array(like):
            return None
        dtype = like.dtype if dtype is None else dtype
        key = (name, tuple(shape), str(dtype))
        a = self.arrays.get(key)
        if a is None:
            if len(self.arrays) >= self.max_shapes * 4:     # an evaluation with other batch sizes
                self.arrays.clear()
            import cupy as cp
            a = self.arrays[key] = cp.empty(shape, dtype=dtype)
        return a


def backward_inputs(net) -> list:
    """Every array the sparse ``net.backward`` reads besides dL/dlogits, and the gradient arrays it
    writes, in a fixed order (each layer's :meth:`backward_inputs`, the spike counts, the grads)."""
    out = []
    for layer in net.layers:
        out += layer.backward_inputs()
    return out + list(net.counts) + [layer.grads["weight"] for layer in net.layers]


def _array_key(a):
    if a is None:
        return None
    return (a.data.ptr, a.shape, a.strides, a.dtype)


def key_parts(net, grad_logits) -> tuple:
    """(arrays, scalars): dL/dlogits and :func:`backward_inputs`, and every scalar passed to the
    backward's kernels (the hidden neurons, the active sets' capacities, the readout's beta and
    mode, the regularizer's constants)."""
    reg = net.regularizer
    scalars = (tuple((h.neuron, h.compaction.capacity(h.V.shape)) for h in net.hidden),
               (net.readout.beta, net.readout.mode),
               (reg.lambda_up, reg.f_up, reg.lambda_low, reg.f_low))
    return [grad_logits, *backward_inputs(net)], scalars


def fingerprint(net, grad_logits) -> tuple:
    """What a captured backward depends on: pointers, shapes, strides and dtypes of its inputs,
    every scalar passed to its kernels, and the active sets' capacities."""
    return _fingerprint(*key_parts(net, grad_logits))


def _fingerprint(arrays, scalars) -> tuple:
    return tuple(_array_key(a) for a in arrays), scalars


class _Recent:
    """The key of the last replay, and a cheaper way to tell that it still holds: the same array
    objects (weak references: nothing is kept alive) with the same shapes and strides, and equal
    scalars. A CuPy array's pointer and dtype cannot change (read-only attributes); its shape and
    strides can (``a.shape = ...``), so they are compared. Equal parts give an equal
    :func:`fingerprint`, so this is exact, not a heuristic; it saves the pointer and dtype reads
    and the hashing of ~60 values per step, host time that delays the replay's launch."""

    def __init__(self, arrays, scalars, key):
        self.refs = [None if a is None else weakref.ref(a) for a in arrays]
        self.geometry = [None if a is None else (a.shape, a.strides) for a in arrays]
        self.scalars, self.key = scalars, key

    def key_if_same(self, arrays, scalars):
        if len(arrays) != len(self.refs) or scalars != self.scalars:
            return None
        for a, ref, geo in zip(arrays, self.refs, self.geometry):
            if a is None:
                if ref is not None:
                    return None
            elif ref is None or ref() is not a or (a.shape, a.strides) != geo:
                return None
        return self.key


class Pass:
    """What one backward has queued so far; a re-run after an overflow skips what is done."""

    def __init__(self):
        self.readout_adjoint = False    # the readout's e = dL/dz exists
        self.readout_weight = False     # its weight gradient is queued
        self.r1 = self.r2 = None        # the regularizer's dL/dcounts of hidden1, hidden2
        self.e_ready = None             # event after e, r2, r1 on the readout's side stream
        self.input_grad = False         # hidden1 computes dL/dS_in (Network.backward(need_input_grad=True))
        self.g_in = None                # ... and leaves it here

    def copy(self):
        p = Pass()
        p.__dict__.update(self.__dict__)
        return p


class _Captured:
    def __init__(self, graph, workspace, net, state):
        self.graph, self.workspace, self.state = graph, workspace, state
        self.e = net.readout.adjoint
        self.sets = [h.compaction.active for h in net.hidden]


class BackwardGraphs:
    """The captured backwards of one network, least recently used first."""

    def __init__(self, max_graphs=4):
        if int(max_graphs) < 1:
            raise ValueError(f"max_graphs must be >= 1, got {max_graphs}")
        self.max_graphs = int(max_graphs)
        self.graphs: OrderedDict = OrderedDict()
        self.seen: OrderedDict = OrderedDict()      # keys met once, not captured (yet)
        self.recent: _Recent | None = None          # the last replayed key (a cheaper check)
        self.captures = self.replays = 0
        self.stream = None
        self.warm = False       # a sparse backward has run eagerly: kernels loaded, caches made

    @property
    def workspace_bytes(self) -> int:
        """Device memory held by the stored graphs' workspaces."""
        return sum(g.workspace.nbytes for g in self.graphs.values())

    def usable(self, net) -> bool:
        """Whether this backward can be a replay: a sparse GPU network whose sparse backward has
        run eagerly once (so nothing is compiled or uploaded inside a capture), no layer method
        replaced on the instance (the trainer's diagnosis wraps them to watch every call, which
        needs them called), every hidden layer with a known capacity and no active set yet."""
        if not (net.sparse and self.warm and is_cupy_array(net.readout.params["weight"])):
            return False
        if any(m in vars(l) for l in net.layers for m in _PATCHABLE):
            return False
        return all(h.compaction.active is None and h.compaction.capacity(h.V.shape) is not None
                   for h in net.hidden)

    def run(self, net, grad_logits, queue):
        """Replay the graph of this backward, capturing it first with ``queue(grad_logits, step,
        state)`` if its fingerprint was seen once before; leaves the layers as the eager ``queue``
        would (before the sets are settled) and returns its Pass. None: a key seen for the first
        time, nothing done (the caller runs the backward eagerly)."""
        import cupy as cp
        arrays, scalars = key_parts(net, grad_logits)
        recent = self.recent
        key = None if recent is None else recent.key_if_same(arrays, scalars)
        if key is None:
            key = _fingerprint(arrays, scalars)
            recent = None
        g = self.graphs.get(key)
        if g is None:
            if key not in self.seen:
                self.seen[key] = True
                while len(self.seen) > 4 * self.max_graphs:
                    self.seen.popitem(last=False)
                return None
            del self.seen[key]
            g = self._capture(net, grad_logits, queue)
            self.graphs[key] = g
            while len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        else:
            self.graphs.move_to_end(key)
        g.graph.launch(stream=cp.cuda.get_current_stream())
        self.replays += 1
        if recent is None:                            # after the launch: off the critical path
            self.recent = _Recent(arrays, scalars, key)
        net.readout.adjoint = g.e
        for h, A in zip(net.hidden, g.sets):          # fresh pending sets over the workspace's arrays
            h.compaction.active = ActiveSet(A.shape, A.offsets, A.b, A.t, A.j, A.v, pending=True,
                                            _totals=A._totals, _index=A._index)
        return g.state.copy()

    def _capture(self, net, grad_logits, queue) -> _Captured:
        import cupy as cp
        from . import cuda
        if self.stream is None:
            self.stream = cp.cuda.Stream(non_blocking=True)
        state = Pass()
        # per-stream state is made before, not inside, the graph (cuda.prepare_capture)
        graph, ws, _ = capture(self.stream, lambda: queue(grad_logits, lambda name: nullcontext(), state),
                               prepare=cuda.prepare_capture)
        self.captures += 1
        return _Captured(graph, ws, net, state)
