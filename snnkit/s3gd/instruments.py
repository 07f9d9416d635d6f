"""Instruments for looking at S3GD's sparsity: active fractions, dense-vs-sparse gradient
similarity, backward time and peak backward memory per layer.

Memory is the peak of allocator bytes during the backward minus the bytes held before it (the
reference's definition): on CuPy through a memory-pool hook, on NumPy through ``tracemalloc``.
"""
from __future__ import annotations

import time
import tracemalloc
from contextlib import contextmanager

import numpy as np

from ..backend import is_cupy_array, synchronize, to_numpy


class Ledger:
    """Bookkeeping of live allocations: overall peak and per-step peaks (bytes above the step's start).
    The CuPy hook feeds it; kept free of CuPy so that it can be tested anywhere."""

    def __init__(self):
        self.live, self.cur, self.peak = {}, 0, 0
        self.label, self.label_start, self.label_peak = None, 0, {}

    def malloc(self, ptr, size):
        self.live[ptr] = size
        self.cur += size
        self.peak = max(self.peak, self.cur)
        if self.label is not None:
            self.label_peak[self.label] = max(self.label_peak[self.label], self.cur - self.label_start)

    def free(self, ptr):
        self.cur -= self.live.pop(ptr, 0)      # blocks allocated before the measurement are ignored

    def begin(self, label):
        self.label, self.label_start = label, self.cur
        self.label_peak.setdefault(label, 0)

    def end(self):
        self.label = None


class PeakMemory:
    """``with PeakMemory(on_gpu) as m: ...`` then ``m.peak_bytes`` (peak above the start); inside,
    ``with m.step(name): ...`` also records ``m.step_bytes[name]`` (peak above that step's start)."""

    def __init__(self, on_gpu: bool):
        self.on_gpu = on_gpu
        self.peak_bytes = 0
        self.step_bytes: dict = {}

    def __enter__(self):
        self.ledger = Ledger()
        if self.on_gpu:
            import cupy as cp
            ledger = self.ledger

            class _Hook(cp.cuda.MemoryHook):
                name = "snnkit_peak"

                def malloc_postprocess(hook, **kw):
                    ledger.malloc(kw["mem_ptr"], kw["mem_size"])

                def free_postprocess(hook, **kw):
                    ledger.free(kw["mem_ptr"])

            synchronize()
            self._hook = _Hook()
            self._hook.__enter__()
        else:
            self._was = tracemalloc.is_tracing()
            if not self._was:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._start = tracemalloc.get_traced_memory()[0]
            self._cpu_peak = self._start
        return self

    @contextmanager
    def step(self, label):
        if self.on_gpu:
            synchronize()
            self.ledger.begin(label)
            try:
                yield
            finally:
                synchronize()
                self.ledger.end()
                self.step_bytes[label] = self.ledger.label_peak[label]
        else:                                  # tracemalloc has one peak: fold it before resetting
            self._cpu_peak = max(self._cpu_peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            try:
                yield
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                self._cpu_peak = max(self._cpu_peak, peak)
                self.step_bytes[label] = max(self.step_bytes.get(label, 0), int(peak - start))

    def __exit__(self, *exc):
        if self.on_gpu:
            synchronize()
            self._hook.__exit__(*exc)
            self.peak_bytes = int(self.ledger.peak)
        else:
            peak = max(self._cpu_peak, tracemalloc.get_traced_memory()[1])
            self.peak_bytes = int(peak - self._start)
            if not self._was:
                tracemalloc.stop()
        return False


def active_fractions(net):
    """{layer name: (overall fraction, per-step fractions [T])} of the last forward."""
    out = {}
    for h in net.hidden:
        a = h.active_set()
        out[h.name] = (a.fraction, a.per_step())
    return out


def weight_gradients(net, x, y, sparse: bool, forward=True):
    """Weight gradients {layer name: NumPy array} of one backward in the given mode
    (``forward=False`` reuses the last forward, so dense and sparse see the same one)."""
    loss = net.loss()
    was, training = net.sparse, net.training
    net.sparse = sparse
    net.training = False                              # instruments do not feed the dead-layer guard
    try:
        logits = net.forward(x) if forward else net.last_logits
        _, g = loss(logits, y)
        net.backward(g)
        return {l.name: to_numpy(l.grads["weight"]).copy() for l in net.layers}
    finally:
        net.sparse, net.training = was, training


def cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def gradient_cosine(net, x, y):
    """Cosine similarity of dense vs sparse weight gradients per layer, on one shared forward.
    Returns ({name: cosine}, dense grads, sparse grads)."""
    dense = weight_gradients(net, x, y, sparse=False)
    sparse = weight_gradients(net, x, y, sparse=True, forward=False)
    return {k: cosine(dense[k], sparse[k]) for k in dense}, dense, sparse


@contextmanager
def _timed(store, key):
    synchronize()
    t0 = time.perf_counter()
    yield
    synchronize()
    store[key] = store.get(key, 0.0) + time.perf_counter() - t0


@contextmanager
def _step(mem, store, key):
    with mem.step(key), _timed(store, key):
        yield


def backward_profile(net, x, y, repeats=3):
    """Backward time (ms, median over ``repeats``) and peak backward memory (bytes) per layer and
    in total, for the dense and the sparse mode, on one shared forward.

    Returns {mode: {"total_ms", "memory_bytes", "layers_ms": {name: ms}, "layers_bytes": {name: bytes}}};
    the sparse mode's "compact" entry is the active-set compaction (part of its backward, as in the
    reference). A layer's bytes are its peak above what was allocated when it started."""
    loss = net.loss()
    on_gpu = is_cupy_array(net.readout.params["weight"])
    was, training = net.sparse, net.training
    net.training = False
    logits = net.forward(x)
    _, g = loss(logits, y)
    out = {}
    try:
        for mode in ("dense", "sparse"):
            net.sparse = mode == "sparse"
            runs, mems, step_mems = [], [], []
            for _ in range(max(1, repeats)):
                for h in net.hidden:
                    h.compaction.forget()             # compaction is part of each sparse backward
                layers: dict = {}
                with PeakMemory(on_gpu) as m, _timed(layers, "total"):
                    net.backward(g, timer=lambda name: _step(m, layers, name))
                runs.append(layers)
                mems.append(m.peak_bytes)
                step_mems.append(m.step_bytes)
            med = {k: 1e3 * float(np.median([r[k] for r in runs])) for k in runs[0]}
            out[mode] = {"total_ms": med.pop("total"), "memory_bytes": int(np.max(mems)),
                         "layers_ms": med,
                         "layers_bytes": {k: int(max(sm[k] for sm in step_mems)) for k in step_mems[0]}}
    finally:
        net.sparse, net.training = was, training
    return out
