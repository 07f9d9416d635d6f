"""The sparse backward of S3GD: gradient only through the entries near threshold.

Active set of a layer (delta is the half-width of the band):

    A = {(b, t, j) : |V[b,t,j] - threshold| < delta}

The paper's code stores b_th = threshold - delta (delta = 0.05 is its "b_th = 0.95"); the paper's
B_th axis is ambiguous, so snnkit is parametrized by delta and says so everywhere.

With g[b,t,j] = dL/dS[b,t,j] * sigma'(V[b,t,j] - threshold) kept only on A, the LIF backward
(reset detached, see lif.py) is

    dW[i, j]        = sum_{e in A, j_e = j} g_e tr[b_e, t_e, i]          tr = scan(S_in, beta)
    dL/dS_in[b,k,i] = sum_{e in A, b_e = b, t_e >= k} beta^(t_e - k) g_e W[i, j_e]

This is the exact gradient of the model whose surrogate is truncated to the band; nothing else
is approximated. dL/dS_in is only needed where the layer below is itself active (its own g is
zero elsewhere), so it is evaluated at the entries of the layer below's active set and travels
between layers as an :class:`ActiveGrad`. No dense [B, T, N] gradient exists anywhere.

Entries are stored grouped by sample, then neuron, then time (CSR over (b, j)): the weight
gradient walks the (b, j) segments of one neuron j, the input gradient walks the entries of one
sample b. The CUDA twins are in ``kernels/s3gd_sparse_backward.cu``.

On a GPU a set can be *pending*: its arrays were sized from an earlier step's count (a capacity)
and its true count is still on the device, so that the backward can be queued without waiting for
the GPU. :func:`settle` brings the counts over once the backward is queued; a set whose count
exceeded its capacity is marked overflowed (its results are discarded and recomputed with room
for every entry: nothing is dropped).

Scheduling (which layer's set to compact when, and how much room its arrays get) lives here too:
each :class:`~snnkit.s3gd.lif.LIFDense` holds a :class:`Compaction` (its set of the last forward and
its capacities), and :func:`compact` / :func:`settle_layers` work on a list of such layers, so that
all of a network's sets reach the host in one synchronization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import is_cupy_array, xp_of
from .neuron import fast_sigmoid_grad, in_band


@dataclass
class ActiveSet:
    """Compact list of the active entries of a [B, T, N] array, grouped by (b, j), t ascending."""
    shape: tuple             # (B, T, N)
    offsets: object          # [B*N + 1] int64: entries of (b, j) are offsets[b*N+j] : offsets[b*N+j+1]
    b: object                # [n] int32
    t: object                # [n] int32
    j: object                # [n] int32
    v: object                # [n] membrane potential at the entry (for the surrogate)
    pending: bool = False    # GPU: count still on the device, arrays of the capacity's length
    overflowed: bool = False  # its count exceeded the capacity: its results must be recomputed
    total: int | None = None  # the true count, once known on the host (also of an overflowed set)
    _totals: object = None    # the compaction's device counts (shared by the sets compacted together)
    _index: int = 0

    def _settled(self, what):
        if self.pending or self.overflowed:
            raise RuntimeError(f"{what} of an active set whose entry count is not on the host yet "
                               "(pending until the backward calls settle) or that overflowed its "
                               "capacity; call snnkit.s3gd.sparse.settle([A]) or use layer.active_set()")

    @property
    def capacity(self) -> int:
        """Room in the entry arrays (= n once settled)."""
        return int(self.t.shape[0])

    @property
    def n(self) -> int:
        """The number of entries (asks a pending set to be settled first)."""
        self._settled("the entry count")
        return self.capacity

    @property
    def fraction(self) -> float:
        """Fraction of all B*T*N entries that are active."""
        B, T, N = self.shape
        return self.n / float(B * T * N)

    def per_step(self):
        """Active fraction at every time step, [T] (NumPy)."""
        from ..backend import to_numpy
        self._settled("per_step")
        B, T, N = self.shape
        return np.bincount(to_numpy(self.t), minlength=T) / float(B * N)

    def gather(self, dense):
        """Values of a dense [B, T, N] array at the entries."""
        self._settled("gather")
        return dense[self.b, self.t, self.j]

    def scatter(self, values):
        """A dense [B, T, N] array that is zero outside the entries (for tests and figures only)."""
        self._settled("scatter")
        xp = xp_of(values)
        out = xp.zeros(self.shape, dtype=values.dtype)
        out[self.b, self.t, self.j] = values
        return out


@dataclass
class ActiveGrad:
    """dL/dS of a layer, known only on that layer's active set (same order as its entries)."""
    active: ActiveSet
    values: object


def active_set(V, threshold=1.0, delta=0.2) -> ActiveSet:
    """Compact the band |V - threshold| < delta of V [B, T, N]."""
    return active_sets([(V, threshold, delta)])[0]


def active_sets(items, capacities=None) -> list:
    """The active sets of several (V, threshold, delta); on a GPU all are compacted together, so
    that the entry counts reach the host in one synchronization. ``capacities`` (GPU only; one
    int per item): size the entry arrays to these and do not synchronize at all; the sets come
    back pending, for :func:`settle`. NumPy always gives exact sets."""
    items = list(items)
    for _, _, delta in items:
        if not delta > 0:
            raise ValueError(f"delta must be > 0 (the half-width of the active band), got {delta}")
    if items and is_cupy_array(items[0][0]):
        from . import cuda
        arrays, totals = cuda.active_entries(items, capacities)
        pending = capacities is not None
        return [ActiveSet(tuple(V.shape), *a, pending=pending, _totals=totals if pending else None, _index=k)
                for k, ((V, _, _), a) in enumerate(zip(items, arrays))]
    return [_active_set_numpy(V, threshold, delta) for V, threshold, delta in items]


def settle(sets) -> list:
    """Bring the entry counts of pending sets to the host (one transfer per compaction: this waits
    for the GPU, so call it once everything that uses the sets is queued). A set that fits its
    capacity becomes an exact set (its arrays cut to the count); one that does not is marked
    ``overflowed``. Returns every set's true count."""
    counts = {}
    for A in sets:
        if A.pending and id(A._totals) not in counts:
            counts[id(A._totals)] = A._totals.get()
    for A in sets:
        if A.pending:
            A.total = int(counts[id(A._totals)][A._index])
            A.pending, A._totals = False, None
            if A.total <= A.capacity:
                A.b, A.t, A.j, A.v = A.b[:A.total], A.t[:A.total], A.j[:A.total], A.v[:A.total]
            else:
                A.overflowed = True
        elif A.total is None:
            A.total = int(A.t.shape[0])
    return [A.total for A in sets]


def _active_set_numpy(V, threshold, delta) -> ActiveSet:
    B, T, N = V.shape
    mask = in_band(V, threshold, delta)
    b, j, t = np.nonzero(mask.transpose(0, 2, 1))           # (b, j, t) order: CSR over (b, j)
    offsets = np.zeros(B * N + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1).ravel(), out=offsets[1:])
    b, t, j = b.astype(np.int32), t.astype(np.int32), j.astype(np.int32)
    return ActiveSet((B, T, N), offsets, b, t, j, V[b, t, j])


def full_set(shape, xp=np) -> ActiveSet:
    """Every entry of a [B, T, N] array as an active set (to get a dense input gradient)."""
    B, T, N = shape
    b, j, t = (a.ravel().astype(np.int32) for a in np.meshgrid(np.arange(B), np.arange(N), np.arange(T),
                                                                indexing="ij"))
    offsets = np.arange(B * N + 1, dtype=np.int64) * T
    return ActiveSet((B, T, N), *(xp.asarray(a) for a in (offsets, b, t, j)), None)


def entry_grad(grad_s, A: ActiveSet, r, threshold=1.0, scale=100.0):
    """g_e = (dL/dS_e + r[b_e, j_e]) sigma'(V_e - threshold) with the fast sigmoid
    sigma'(x) = 1 / (scale |x| + 1)^2; ``r`` [B, N] may be None."""
    xp = xp_of(A.v)
    if r is None:
        r = xp.zeros((A.shape[0], A.shape[2]), dtype=A.v.dtype)
    if is_cupy_array(A.v):
        from . import cuda
        return cuda.entry_grad(grad_s, r, A.b, A.j, A.v, A.offsets, threshold, scale, A.shape[2])
    return ((grad_s + r[A.b, A.j]) * fast_sigmoid_grad(A.v, threshold, scale)).astype(A.v.dtype)


def sparse_weight_grad(g, A: ActiveSet, trace, out=None):
    """dW [N_in, N] = sum over entries e of g_e tr[b_e, t_e, :] in column j_e (written into
    ``out`` when given: a layer's ``grads["weight"]``, updated in place)."""
    N = A.shape[2]
    if is_cupy_array(trace):
        from . import cuda
        return cuda.sparse_weight_grad(g, A.t, A.offsets, trace, N, out)
    dWt = np.zeros((N, trace.shape[2]), dtype=trace.dtype)
    np.add.at(dWt, A.j, g[:, None] * trace[A.b, A.t])
    if out is None:
        return np.ascontiguousarray(dWt.T)
    out[...] = dWt.T
    return out


def sparse_input_grad(g, A: ActiveSet, Q: ActiveSet, W, beta):
    """dL/dS_in at the entries q of Q (the layer below's active set), from this layer's g on A."""
    T = A.shape[1]
    if is_cupy_array(W):
        from . import cuda
        return cuda.sparse_input_grad(g, A.t, A.j, A.offsets, Q.t, Q.offsets, W, beta, T)
    pw = (beta ** np.arange(T, dtype=np.float64)).astype(W.dtype)   # beta^(t - k), never a negative power
    out = np.zeros(Q.n, dtype=W.dtype)
    if Q.n == 0 or A.n == 0:
        return out
    N = A.shape[2]
    q_start = np.searchsorted(Q.b, np.arange(A.shape[0] + 1))
    for b in range(A.shape[0]):                              # one sample at a time, like a block's loop
        es = slice(int(A.offsets[b * N]), int(A.offsets[(b + 1) * N]))
        qs = slice(int(q_start[b]), int(q_start[b + 1]))
        if es.start == es.stop or qs.start == qs.stop:
            continue
        lag = A.t[es][None, :] - Q.t[qs][:, None]            # t_e - k   [n_q, n_e]
        decay = np.where(lag >= 0, pw[np.maximum(lag, 0)], 0)
        out[qs] = (decay * g[es][None, :] * W[Q.j[qs]][:, A.j[es]]).sum(axis=1)
    return out


def linear_input_grad_at(e, W, Q: ActiveSet):
    """dL/dS at the entries q of Q through a dense linear map z = S W (the readout):
    sum_c W[j_q, c] e[b_q, t_q, c] with e = dL/dz [B, T, C], W [N, C]."""
    if is_cupy_array(W):
        from . import cuda
        return cuda.linear_input_grad_at(e, W, Q.b, Q.t, Q.j, Q.offsets)
    return (e[Q.b, Q.t] * W[Q.j]).sum(axis=1)


# -- scheduling: which sets to compact, and with how much room ---------------------------------------
CAPACITY_MARGIN = 1.5
"""Deferred compaction sizes a layer's entry arrays to this times the largest count seen so far:
activity drifts during training, and an overflow costs a re-run of the backward."""
MIN_CAPACITY = 1024
"""...and to at least this many entries (capped at B*T*N): a nearly silent first batch would
otherwise give a capacity that the next batch overflows. 1024 entries cost 20 KiB."""


class Compaction:
    """A layer's active-set bookkeeping: ``active``, the set of its last forward (None until
    asked for; the forward calls :meth:`forget`), and the entry-array capacity per input shape
    that a deferred compaction uses (grown by :meth:`remember`, never shrunk)."""

    def __init__(self):
        self.active: ActiveSet | None = None
        self.capacities: dict = {}          # (B, T, N) -> capacity

    def forget(self) -> None:
        """Drop the active set (a new forward, a new delta, or a backward to be re-run)."""
        self.active = None

    def capacity(self, shape) -> int | None:
        """The capacity for a [B, T, N] potential, None if no count for that shape was seen."""
        return self.capacities.get(tuple(shape))

    def remember(self, shape, n) -> None:
        """Grow the capacity of ``shape`` to fit ``n`` entries with :data:`CAPACITY_MARGIN`."""
        B, T, N = shape
        cap = min(B * T * N, max(MIN_CAPACITY, int(CAPACITY_MARGIN * n)))
        if cap > self.capacities.get(tuple(shape), -1):
            self.capacities[tuple(shape)] = cap


def compact(layers, deferred=False) -> list:
    """The active sets of the layers' last forward (each layer has ``V``, ``threshold``, ``delta``
    and a :class:`Compaction` ``compaction``), computing the missing ones together: one host
    synchronization on a GPU, however many layers.

    ``deferred`` (GPU): no synchronization at all once every layer has seen an earlier count; the
    sets are sized from it (see :meth:`Compaction.remember`) and come back pending: call
    :func:`settle_layers` after queuing everything that uses them."""
    for layer in layers:
        if layer.V is None:
            raise RuntimeError(f"{layer.name}: call forward before asking for the active set")
    todo = [layer for layer in layers if layer.compaction.active is None]
    caps = [l.compaction.capacity(l.V.shape) for l in todo] if deferred else None
    if caps is not None and None in caps:          # a layer without an earlier count: count exactly
        caps = None
    found = active_sets([(l.V, l.threshold, l.delta) for l in todo], caps)
    for layer, A in zip(todo, found):
        layer.compaction.active = A
        if not A.pending:
            layer.compaction.remember(A.shape, A.n)
    return [layer.compaction.active for layer in layers]


def settle_layers(layers) -> bool:
    """Settle the layers' pending active sets (one transfer, which waits for the GPU). True if all
    fitted; otherwise the overflowed layers' sets are dropped (their capacity grown to fit) and
    the caller recomputes what used them."""
    sets = [l.compaction.active for l in layers]
    fits = True
    for layer, A, n in zip(layers, sets, settle(sets)):
        layer.compaction.remember(A.shape, n)
        if A.overflowed:
            layer.compaction.forget()
            fits = False
    return fits
