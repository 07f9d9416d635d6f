"""GPU time of every kernel of one BATS training step (the benchmark's workload, bench_bats.py), as
the captured step (snnkit.bats.graph.GraphStep) queues them, measured by Nsight Compute:

    SNNKIT_BACKEND=cupy PYTHONPATH=. ncu --profile-from-start off --clock-control none \\
        --metrics gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second \\
        --csv python3 benchmarks/bats_kernel_times.py --batch 50 [--staged all|auto|none] > kernels.csv
    python3 benchmarks/bats_kernel_times.py --summarize kernels.csv

The script trains 20 steps (the eager path of GraphStep: the same kernels, no capture) to reach the
benchmark's activity, then profiles exactly one step between cudaProfilerStart/Stop. The sum of the
kernels' times is the step's GPU work (ncu runs the kernels one at a time, each after the GPU
idled, so the clocks it reports may be below the boost clock of a replay: for comparison between
kernels, not wall time); a replay's GPU time (bench_bats.py --graph) is the real total.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import gpu_ms  # noqa: E402


def summarize(path):
    """Print each kernel's time (and SM clock, when profiled) from ncu's --csv output."""
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
    rows, clock = {}, {}
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        v = float(r["Metric Value"].replace(",", ""))
        key = (r["ID"], r["Kernel Name"][:70])
        if r.get("Metric Name") == "gpu__time_duration.sum":
            rows[key] = v * scale.get(r.get("Metric Unit", "ns"), 1e-3)
        elif r.get("Metric Name") == "sm__cycles_elapsed.avg.per_second":
            clock[key] = v * {"Ghz": 1.0, "GHz": 1.0, "Mhz": 1e-3, "MHz": 1e-3}.get(r.get("Metric Unit"), 1e-9)
    for key, us in rows.items():
        c = f"  {clock[key]:.2f} GHz" if key in clock else ""
        print(f"{us:9.1f} us{c}  {key[1]}")
    print(f"{sum(rows.values()):9.1f} us  total ({len(rows)} kernels)")


def micro(B, reps=20):
    """The output layer's forward (the longest kernel of a step) alone, on the event list of a
    trained step: bats_forward vs bats_forward_staged with and without the weights in shared
    memory; CUDA events around ``reps`` launches (the launchers' fills and copies included)."""
    import cupy as cp
    import bench_bats as bb
    from snnkit.bats import graph as G
    from snnkit.bats import SpikeCountLoss
    from snnkit.bats.simulate import _simulate_cuda
    from snnkit.nn import Adam
    net = bb.build(0)
    step = G.GraphStep(net, SpikeCountLoss(*bb.SETTINGS["targets"]), Adam(net, lr=bb.SETTINGS["lr"]), graphs=0)
    data = bb.Batches(B, bb.synthetic_pool(max(2000, B)))
    for _ in range(20):
        float(step(*data.next()))
    l1, l2 = net.layers
    ev = G.sort_events_capturable(l1.last.times, l2.tau_s)
    n_events = cp.isfinite(l1.last.times).sum(axis=(1, 2))
    args = (l2.params["weight"], *ev, l2.tau_s, l2.theta, l2.delta_theta, l2.max_spikes, l2.t_max, l2.dt)

    def timed(fn):                                   # microseconds
        return gpu_ms(cp, fn, reps) * 1e3

    print(f"batch {B}: hidden spikes per sample {float(n_events.mean()):.0f} (max {int(n_events.max())})")
    print(f"  sort (capturable)       {timed(lambda: G.sort_events_capturable(l1.last.times, l2.tau_s)):8.1f} us")
    print(f"  bats_forward            {timed(lambda: _simulate_cuda(*args)):8.1f} us")
    print(f"  staged, weights in smem {timed(lambda: G.simulate_staged(*args)):8.1f} us")
    keep, G._W_STAGE_BYTES = G._W_STAGE_BYTES, 0
    print(f"  staged, weights global  {timed(lambda: G.simulate_staged(*args)):8.1f} us")
    G._W_STAGE_BYTES = keep
    # one staged launch between cudaProfilerStart/Stop, for a source-level profile of it alone:
    #   ncu --profile-from-start off --set full --import-source yes -o out python3 ... --micro
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.start()
    G.simulate_staged(*args)
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--summarize", default=None, metavar="CSV")
    ap.add_argument("--micro", action="store_true",
                    help="time the output layer's forward kernels alone (CUDA events), no ncu")
    ap.add_argument("--staged", default="auto", choices=["auto", "all", "none"],
                    help="GraphStep's staged_forward: None, True, False")
    a = ap.parse_args()
    if a.summarize:
        return summarize(a.summarize)
    if a.micro:
        return micro(a.batch)
    import cupy as cp
    import bench_bats as bb
    from snnkit.bats.graph import GraphStep
    from snnkit.nn import Adam
    from snnkit.bats import SpikeCountLoss
    net = bb.build(0)
    step = GraphStep(net, SpikeCountLoss(*bb.SETTINGS["targets"]), Adam(net, lr=bb.SETTINGS["lr"]), graphs=0,
                     staged_forward={"auto": None, "all": True, "none": False}[a.staged])
    data = bb.Batches(a.batch, bb.synthetic_pool(max(2000, a.batch)))
    for _ in range(20):
        float(step(*data.next()))
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.start()
    float(step(*data.next()))
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.stop()


if __name__ == "__main__":
    main()
