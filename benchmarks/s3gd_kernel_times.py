"""GPU time of every kernel of one sparse backward (SHD by default), measured by Nsight Compute:

    SNNKIT_BACKEND=cupy PYTHONPATH=. ncu --profile-from-start off --metrics gpu__time_duration.sum \
        --csv python3 benchmarks/s3gd_kernel_times.py [--config shd] > kernels.csv

The script builds the benchmark's calibrated network (bench_s3gd.py), runs three backwards to warm
up (compiles, capacities), then profiles exactly one eager sparse backward between
cudaProfilerStart/Stop. The sum of the kernels' times is the backward's GPU work; the wall clock
beyond it is launch overhead and idle gaps.
"""
from __future__ import annotations

import argparse
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="shd")
    a = ap.parse_args()
    import cupy as cp
    import bench_s3gd as bs
    net, _, _, x, y = bs.calibrated_network(a.config)
    _, g = net.loss()(net.forward(x), y)
    for _ in range(4):
        for h in net.hidden:
            h.compaction.forget()
        net.backward(g)
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.start()
    for h in net.hidden:
        h.compaction.forget()
    net.backward(g)
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.stop()


if __name__ == "__main__":
    main()
