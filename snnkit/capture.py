"""Recording GPU work into a CUDA graph: what the S3GD backward (snnkit/s3gd/graph.py) and the BATS
training step (snnkit/bats/graph.py) share.

A graph replays the exact kernels and the exact device addresses that were enqueued while it was
recorded. So every block allocated during the recording must stay owned by the graph for the
graph's life (:class:`Workspace`), and a recording that fails must still be ended before the error
surfaces (:func:`capture`), or the stream stays in capture mode and every later launch fails.
"""
from __future__ import annotations

__all__ = ["Workspace", "capture"]


class Workspace:
    """The allocator used while a graph is recorded: it keeps every block it hands out, so the memory
    pool can never give a block that the graph writes to another array."""

    def __init__(self):
        self.blocks, self.nbytes = [], 0

    def malloc(self, size):
        import cupy as cp
        mem = cp.get_default_memory_pool().malloc(size)
        self.blocks.append(mem)
        self.nbytes += int(size)
        return mem


def capture(stream, record, prepare=None):
    """``(graph, workspace, record())``: run ``record()`` with ``stream`` capturing and the
    :class:`Workspace` as allocator. ``prepare()`` runs on ``stream`` just before the capture begins
    (state that must exist before, not inside, the graph: per-stream counters, cached constants)."""
    import cupy as cp
    ws = Workspace()
    with stream:
        if prepare is not None:
            prepare()
        stream.begin_capture()
        try:
            with cp.cuda.using_allocator(ws.malloc):
                result = record()
        except BaseException:
            try:                                    # the capture must end; its error is the news
                stream.end_capture()
            except Exception:
                pass
            raise
        graph = stream.end_capture()
    return graph, ws, result
