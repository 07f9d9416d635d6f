"""Where the sparse backward's time goes (GPU).

Eager (default): every CUDA launcher of snnkit.s3gd.cuda, the readout's weight gradient and the
final settle are wrapped to record a host clock and a CUDA event on the current stream before and
after the call. One backward later, the table says when Python issued each piece and when the GPU
reached it: host-bound pieces start on the GPU as soon as they are issued, GPU-bound ones queue up.

``--graph``: the backward as a CUDA-graph replay (``Network(cuda_graph=True)``, what bench_s3gd.py
times as "sparse + graph"), cut into what bounds it: the host's work before the launch (checks,
the dL/dlogits copy, the graph's key), the replay on the GPU (an event before and after the
launch, on the same stream), and the host's work after it (waiting for the count transfer,
settling the sets, the dead-layer guard). Medians over ``--reps`` backwards; the same backward
without the probes is timed as bench_s3gd.py does, so that the probes' own cost shows.

    SNNKIT_BACKEND=cupy PYTHONPATH=. python3 benchmarks/s3gd_timeline.py [--config shd] [--graph]
        [--reps 50]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


class _LaunchProbe:
    """Stands in for a captured graph: an event and the host clock just before and after its launch."""

    def __init__(self, graph, marks):
        self.graph, self.marks = graph, marks

    def launch(self, stream):
        import cupy as cp
        self.marks["host_launch"] = time.perf_counter()
        self.marks["ev_launch"] = stream.record(cp.cuda.Event())
        self.graph.launch(stream=stream)
        self.marks["ev_replayed"] = stream.record(cp.cuda.Event())
        self.marks["host_launched"] = time.perf_counter()


def graph_timeline(net, g, reps):
    """Phases of one graphed backward (us, medians over ``reps``): see the module docstring."""
    import cupy as cp
    from snnkit.s3gd import network
    from snnkit.s3gd.graph import BackwardGraphs

    def backward():
        for h in net.hidden:
            h.compaction.forget()
        net.backward(g)

    net.cuda_graph, net.graphs = True, BackwardGraphs()
    for _ in range(4):                       # eager (exact count), seen, captured, replayed
        backward()
    if net.graphs.captures != 1 or net.graphs.replays < 2:
        raise RuntimeError(f"expected 1 capture and replays, got {net.graphs.captures} / {net.graphs.replays}")
    plain = []                               # as bench_s3gd.py times it: no probes
    for _ in range(reps):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        backward()
        cp.cuda.Device().synchronize()
        plain.append(time.perf_counter() - t0)
    marks = {}
    for c in net.graphs.graphs.values():
        c.graph = _LaunchProbe(c.graph, marks)
    settle = network.settle_layers

    def timed_settle(layers):
        marks["host_settle"] = time.perf_counter()
        out = settle(layers)
        marks["host_settled"] = time.perf_counter()
        return out
    network.settle_layers = timed_settle
    rows = []
    try:
        for _ in range(reps):
            cp.cuda.Device().synchronize()
            st = cp.cuda.get_current_stream()
            h0 = time.perf_counter()
            ev0 = st.record(cp.cuda.Event())
            backward()
            h_end = time.perf_counter()
            ev_end = st.record(cp.cuda.Event())
            ev_end.synchronize()
            gpu_launch = 1e-3 * cp.cuda.get_elapsed_time(ev0, marks["ev_launch"])
            gpu_done = 1e-3 * cp.cuda.get_elapsed_time(ev0, marks["ev_replayed"])
            rows.append({
                "host before the launch": marks["host_launch"] - h0,
                "launch call (host)": marks["host_launched"] - marks["host_launch"],
                "host, launch returned -> settle": marks["host_settle"] - marks["host_launched"],
                "settle (waits for the replay, 1 transfer)": marks["host_settled"] - marks["host_settle"],
                "host after settle (guard, return)": h_end - marks["host_settled"],
                "GPU: idle until the launch": gpu_launch,
                "GPU: the replay (launch -> last kernel)": gpu_done - gpu_launch,
                "host after the replay's end": (h_end - h0) - gpu_done,
                "whole backward (probed, host)": h_end - h0,
            })
    finally:
        network.settle_layers = settle
        for c in net.graphs.graphs.values():
            c.graph = c.graph.graph
    med = {k: 1e6 * float(np.median([r[k] for r in rows])) for k in rows[0]}
    med["whole backward (no probes, as bench_s3gd)"] = 1e6 * float(np.median(plain))
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="shd")
    ap.add_argument("--graph", action="store_true", help="the phases of a CUDA-graph replay (see above)")
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args()
    import cupy as cp
    import bench_s3gd as bs
    from snnkit.s3gd import cuda, network, readout
    net, _, _, x, y = bs.calibrated_network(a.config)
    _, g = net.loss()(net.forward(x), y)
    if a.graph:
        med = graph_timeline(net, g, a.reps)
        print(f"{a.config}: one graphed sparse backward, median of {a.reps} (us)")
        for k, v in med.items():
            print(f"  {k:45s} {v:8.1f}")
        return
    log = []

    def wrap(owner, name, label=None):
        fn = getattr(owner, name)

        def inner(*args, **kw):
            st = cp.cuda.get_current_stream()
            e0 = st.record(cp.cuda.Event())
            h0 = time.perf_counter()
            out = fn(*args, **kw)
            h1 = time.perf_counter()
            e1 = cp.cuda.get_current_stream().record(cp.cuda.Event())
            log.append((label or name, h0, h1, e0, e1, st is not cp.cuda.Stream.null))
            return out
        setattr(owner, name, inner)
        return fn

    for name in ("active_entries", "entry_grad", "sparse_weight_grad", "sparse_input_grad",
                 "linear_input_grad_at", "readout_grad", "reg_grad"):
        wrap(cuda, name)
    wrap(readout.LeakyReadout, "weight_grad", "readout weight gradient")
    wrap(network, "settle_layers", "settle (one transfer)")
    for rep in range(8):
        for h in net.hidden:
            h.compaction.forget()
        log.clear()
        cp.cuda.Device().synchronize()
        t_host0 = time.perf_counter()
        ev0 = cp.cuda.get_current_stream().record(cp.cuda.Event())
        net.backward(g)
        ev_end = cp.cuda.get_current_stream().record(cp.cuda.Event())
        ev_end.synchronize()
        t_host_end = time.perf_counter()
    print(f"{a.config}: whole backward {1e3 * (t_host_end - t_host0):.3f} ms host-to-host, "
          f"GPU start->end {cp.cuda.get_elapsed_time(ev0, ev_end):.3f} ms (last of 8)")
    print(f"{'piece':28s} {'host issue us':>14s} {'host ret us':>12s} {'gpu start us':>13s} {'gpu end us':>11s}  side")
    for name, h0, h1, e0, e1, side in log:
        print(f"{name:28s} {1e6 * (h0 - t_host0):14.0f} {1e6 * (h1 - t_host0):12.0f} "
              f"{1e3 * cp.cuda.get_elapsed_time(ev0, e0):13.0f} {1e3 * cp.cuda.get_elapsed_time(ev0, e1):11.0f}  {'side' if side else ''}")
    # GPU time of pieces alone (events around the call, median of 20)
    items = [(h.V, h.threshold, h.delta) for h in net.hidden]
    caps = [h.compaction.capacity(h.V.shape) for h in net.hidden]
    for label, fn in (("compaction alone (2 layers, deferred)", lambda: cuda.active_entries(items, caps)),
                      ("readout weight gradient alone", lambda: net.readout.weight_grad())):
        ts = []
        for _ in range(23):
            st = cp.cuda.get_current_stream()
            e0 = st.record(cp.cuda.Event())
            fn()
            e1 = st.record(cp.cuda.Event())
            e1.synchronize()
            ts.append(cp.cuda.get_elapsed_time(e0, e1))
        print(f"{label}: GPU {1e3 * float(np.median(ts[3:])):.0f} us")
    # per-launch cost of a bare RawKernel, by argument count
    k = cp.RawKernel(r'''extern "C" __global__ void nop3(float* a, int n, float b) { if (threadIdx.x == 1024) a[0] = b; }''', "nop3")
    k15 = cp.RawKernel(r'''extern "C" __global__ void nop15(float* a, float* b, float* c, float* d, float* e, float* f,
        float* g, float* h, long long i, long long j, int k, int l, int m, int n, int o)
        { if (threadIdx.x == 1024) a[0] = i + j + k + l + m + n + o; }''', "nop15")
    buf = cp.zeros(16, cp.float32)
    for kern, args in ((k, (buf, np.int32(1), np.float32(1))),
                       (k15, (buf,) * 8 + (np.int64(1),) * 2 + (np.int32(1),) * 5)):
        kern((1,), (32,), args)
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        for _ in range(2000):
            kern((1,), (32,), args)
        t1 = time.perf_counter()
        cp.cuda.Device().synchronize()
        print(f"bare launch, {len(args)} args: {1e6 * (t1 - t0) / 2000:.1f} us host each")
    for label, fn in (("cp.empty(1000)", lambda: cp.empty(1000, cp.int32)),
                      ("cp.cumsum(1.6M int64)", lambda: cp.cumsum(buf_i)),
                      ("slice a[3:]", lambda: buf[3:]),
                      ("ascontiguousarray(contig)", lambda: cp.ascontiguousarray(buf))):
        buf_i = cp.ones(1_638_400, cp.int64)
        fn()
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        for _ in range(500):
            fn()
        t1 = time.perf_counter()
        cp.cuda.Device().synchronize()
        print(f"{label}: {1e6 * (t1 - t0) / 500:.1f} us host each")


if __name__ == "__main__":
    main()
