"""BATS conv-network benchmark: the paper's MNIST conv model, synthetic inputs, continuous and dt.

Workload (issue 4): 15C5(1)-P2-40C5(3)-P2-300(10)-10(30), tau_s 0.13, theta 0.04 / 0.8 / 0.6 / 0.3,
delta_theta = theta, t_max 0.2, weights U(-1, 1), Adam lr 0.003, spike-count targets 30 / 3. Each of
the 28 x 28 pixels is active with probability 0.19, intensity x ~ U(0, 1), one spike at 0.1 (1 - x).
One step = forward, loss, backward, Adam. Also the forward+backward time of each layer on its own,
the peak memory of the CuPy pool, and the same step with dt = 1 ms.

    PYTHONPATH=. python3 benchmarks/bench_bats_conv.py --batch 20 50 200 --steps 20 --json out.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from snnkit import backend
from snnkit.bats.losses import SpikeCountLoss
from snnkit.bats.study import build_network
from snnkit.nn import Adam
from snnkit.spikes import SpikeTrains

ARCH = "15C5-P2-40C5-P2-300-10"
THETA, MAX_SPIKES = [0.04, 0.8, 0.6, 0.3], [1, 3, 10, 30]


def synthetic(n, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    on = rng.random((n, 784)) < 0.19
    t = np.where(on, 0.1 * (1 - rng.random((n, 784))), np.inf).astype(dtype)[:, :, None]
    return t, on.astype(np.int32), rng.integers(0, 10, n)


def sync():
    backend.synchronize()


def run(B, steps, warmup, dt, seed=0):
    xp = backend.get_xp()
    net = build_network(ARCH, (28, 28, 1), THETA, MAX_SPIKES, 0.13, 0.2, dt=dt, seed=seed)
    loss, opt = SpikeCountLoss(30, 3), Adam(net, 0.003)
    t, c, y = synthetic(B * 4, seed)
    batches = [(SpikeTrains(xp.asarray(t[i * B:(i + 1) * B]), xp.asarray(c[i * B:(i + 1) * B])),
                xp.asarray(y[i * B:(i + 1) * B])) for i in range(4)]

    def step(k):
        x, yb = batches[k % 4]
        out = net.forward(x)
        _, g = loss(out, yb)
        net.backward(g)
        opt.step()
        return out

    for k in range(warmup):
        step(k)
    sync()
    if backend.name() == "cupy":
        xp.get_default_memory_pool().free_all_blocks()
    t0 = time.perf_counter()
    for k in range(steps):
        out = step(k)
    sync()
    ms = 1000 * (time.perf_counter() - t0) / steps
    spiking = [l for l in net.layers if hasattr(l, "tau_s")]
    spikes = [float(xp.asarray(l.last.counts).sum()) / B for l in spiking]
    overflow = [int(xp.asarray(l.last.overflow).sum()) for l in spiking]
    # per layer forward + backward in isolation (inputs as seen in the last step)
    per_layer = []
    x, yb = batches[0]
    acts = [x]
    for l in net.layers:
        acts.append(l.forward(acts[-1]))
    _, g = loss(acts[-1], yb)
    grads = [g]
    for l in reversed(net.layers):
        grads.append(l.backward(grads[-1]))
    grads = grads[::-1]                               # grads[i + 1] = error at the output of layer i
    for i, l in enumerate(net.layers):
        if not hasattr(l, "tau_s") and not hasattr(l, "output_shape"):
            continue
        sync()
        t1 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            l.forward(acts[i])
            l.backward(grads[i + 1])
        sync()
        per_layer.append((repr(l).split("(")[0] + f"[{i}]", 1000 * (time.perf_counter() - t1) / reps))
    pool_gib = None
    if backend.name() == "cupy":
        pool_gib = xp.get_default_memory_pool().total_bytes() / 2 ** 30
    return {"batch": B, "dt": dt, "ms_per_step": ms, "s_per_60k_epoch": ms * 60000 / B / 1000,
            "spikes_per_sample": spikes, "overflow": overflow, "per_layer_ms": per_layer, "pool_gib": pool_gib}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[20, 50, 200])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dt", type=float, nargs="*", default=[0.0, 0.001])
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    info = backend.info()
    print(f"backend {info['backend']} on {info['device']}, {platform.python_version()}, {ARCH}")
    results = []
    for dt in a.dt:
        for B in a.batch:
            r = run(B, a.steps, a.warmup, None if dt == 0 else dt)
            results.append(r)
            print(f"dt={dt * 1000:g} ms B={B}: {r['ms_per_step']:.1f} ms/step, {r['s_per_60k_epoch']:.1f} s/epoch, "
                  f"pool {r['pool_gib']} GiB, spikes/sample {[round(s, 1) for s in r['spikes_per_sample']]}, "
                  f"overflow {r['overflow']}", flush=True)
            print("   per layer fwd+bwd ms: " + ", ".join(f"{n} {v:.2f}" for n, v in r["per_layer_ms"]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": {k: str(v) for k, v in info.items()}, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
