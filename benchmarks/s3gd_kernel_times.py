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

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="shd")
    a = ap.parse_args()
    import cupy as cp
    import bench_s3gd as bs
    from snnkit.backend import to_device
    from snnkit.s3gd import Network
    cfg = bs.CONFIGS[a.config]
    x = to_device(bs.make_input(cfg))
    y = to_device(np.random.default_rng(1).integers(0, cfg["C"], cfg["B"]))
    net = Network(cfg["n_in"], cfg["N"], cfg["C"], cfg["beta"], beta_out=bs.BETA_OUT, delta=cfg["delta"],
                  readout=cfg["readout"], seed=0)
    z, s = np.random.default_rng(2), x
    for layer, target in zip(net.hidden, bs.TARGET_ACTIVITY):
        bs.calibrate(layer, s, target, z.normal(size=(layer.n_in, layer.n_out)), cfg["spread"])
        s = layer.forward(s)
    _, g = net.loss()(net.forward(x), y)
    for _ in range(4):
        for h in net.hidden:
            h._active = None
        net.backward(g)
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.start()
    for h in net.hidden:
        h._active = None
    net.backward(g)
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.stop()


if __name__ == "__main__":
    main()
