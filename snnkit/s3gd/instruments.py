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


class PeakMemory:
    """``with PeakMemory(on_gpu) as m: ...`` then ``m.peak_bytes`` (peak above the start)."""

    def __init__(self, on_gpu: bool):
        self.on_gpu = on_gpu
        self.peak_bytes = 0

    def __enter__(self):
        if self.on_gpu:
            import cupy as cp

            class _Hook(cp.cuda.MemoryHook):
                name = "snnkit_peak"

                def __init__(hook):
                    hook.live, hook.cur, hook.peak = {}, 0, 0

                def malloc_postprocess(hook, **kw):
                    hook.live[kw["mem_ptr"]] = kw["mem_size"]
                    hook.cur += kw["mem_size"]
                    hook.peak = max(hook.peak, hook.cur)

                def free_postprocess(hook, **kw):
                    hook.cur -= hook.live.pop(kw["mem_ptr"], 0)

            synchronize()
            self._hook = _Hook()
            self._hook.__enter__()
        else:
            self._was = tracemalloc.is_tracing()
            if not self._was:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._start = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc):
        if self.on_gpu:
            synchronize()
            self._hook.__exit__(*exc)
            self.peak_bytes = int(self._hook.peak)
        else:
            self.peak_bytes = int(tracemalloc.get_traced_memory()[1] - self._start)
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


def backward_profile(net, x, y, repeats=3):
    """Backward time (ms, median over ``repeats``) and peak backward memory (bytes) per layer and
    in total, for the dense and the sparse mode, on one shared forward.

    Returns {mode: {"total_ms", "memory_bytes", "layers_ms": {name: ms}}}; the sparse mode's
    "compact" entry is the active-set compaction (part of its backward, as in the reference)."""
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
            runs, mems = [], []
            for _ in range(max(1, repeats)):
                for h in net.hidden:
                    h._active = None                  # compaction is part of each sparse backward
                layers: dict = {}
                with PeakMemory(on_gpu) as m, _timed(layers, "total"):
                    net.backward(g, timer=lambda name: _timed(layers, name))
                runs.append(layers)
                mems.append(m.peak_bytes)
            med = {k: 1e3 * float(np.median([r[k] for r in runs])) for k in runs[0]}
            out[mode] = {"total_ms": med.pop("total"), "memory_bytes": int(np.max(mems)),
                         "layers_ms": med}
    finally:
        net.sparse, net.training = was, training
    return out
