"""GPU time of every kernel of one BATS training step (the benchmark's workload, bench_bats.py), as
the captured step (snnkit.bats.graph.GraphStep) queues them, measured by Nsight Compute:

    SNNKIT_BACKEND=cupy PYTHONPATH=. ncu --profile-from-start off --metrics gpu__time_duration.sum \\
        --csv python3 benchmarks/bats_kernel_times.py --batch 50 > kernels.csv
    python3 benchmarks/bats_kernel_times.py --summarize kernels.csv

The script trains 20 steps (the eager path of GraphStep: the same kernels, no capture) to reach the
benchmark's activity, then profiles exactly one step between cudaProfilerStart/Stop. The sum of the
kernels' times is the step's GPU work (ncu runs kernels one at a time, at base clocks: for
comparison between kernels, not wall time); a replay's GPU time beyond it is the gaps between nodes.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def summarize(path):
    rows = []
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") == "gpu__time_duration.sum":
            unit = r.get("Metric Unit", "nsecond")
            v = float(r["Metric Value"].replace(",", ""))
            us = v / 1e3 if unit == "nsecond" else v if unit == "usecond" else v * 1e3
            rows.append((r["Kernel Name"][:70], us))
    total = sum(us for _, us in rows)
    for name, us in rows:
        print(f"{us:9.1f} us  {name}")
    print(f"{total:9.1f} us  total ({len(rows)} kernels)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--summarize", default=None, metavar="CSV")
    a = ap.parse_args()
    if a.summarize:
        return summarize(a.summarize)
    import cupy as cp
    import bench_bats as bb
    from snnkit.bats.graph import GraphStep
    from snnkit.nn import Adam
    from snnkit.bats import SpikeCountLoss
    net = bb.build(0)
    step = GraphStep(net, SpikeCountLoss(*bb.SETTINGS["targets"]), Adam(net, lr=bb.SETTINGS["lr"]), graphs=0)
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
