"""BATS training-step benchmark: the MNIST spike-count network of the paper, synthetic inputs.

Workload (issue 3): 784-800(30)-10(30), tau_s 0.13, theta 0.2 / 1.3, delta_theta = theta, t_max 0.2,
weights U(-1, 1), Adam lr 0.003, count targets 15 / 3. Each of the 784 pixels is active with
probability 0.19, intensity x ~ U(0, 1), one spike at t = 0.1 (1 - x). One step = forward, loss,
backward, Adam update. The public CuPy implementation: 7.5 ms/step at batch 50, 21 ms at batch 200
(H100).

    python benchmarks/bench_bats.py --batch 50 200 4096 --steps 100 --json out.json

Prints per-step time (mean over ``--steps`` after ``--warmup`` training steps), a per-stage
breakdown (GPU event time of each stage, one instrumented step repeated), and spikes per neuron.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from snnkit import backend
from snnkit.bats import LIFDense, LIFParameters, Network, SpikeCountLoss, mark_checked
from snnkit.bats.backward import input_grad, spike_factors, weight_grad
from snnkit.bats.neuron import check_times
from snnkit.bats.simulate import simulate, sort_events
from snnkit.nn import Adam
from snnkit.spikes import SpikeTrains

SETTINGS = dict(tau_s=0.13, theta=(0.2, 1.3), t_max=0.2, max_spikes=30, lr=0.003, targets=(15, 3))


def synthetic_pool(n, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    on = rng.random((n, 784)) < 0.19
    x = rng.random((n, 784))
    t = np.where(on, 0.1 * (1 - x), np.inf).astype(dtype)[:, :, None]
    return t, on.astype(np.int32), rng.integers(0, 10, n)


def build(seed=0, dtype=np.float32):
    s = SETTINGS
    return Network(LIFDense(784, 800, LIFParameters(s["tau_s"], s["theta"][0], max_spikes=30, t_max=s["t_max"]),
                            seed=seed, dtype=dtype),
                   LIFDense(800, 10, LIFParameters(s["tau_s"], s["theta"][1], max_spikes=30, t_max=s["t_max"]),
                            seed=seed + 1, dtype=dtype))


class Batches:
    """Cycles through the pool. Like a real data pipeline, the spike times are validated once on the
    host (no device sync) and uploaded once; the labels stay NumPy, as the Trainer's are."""

    def __init__(self, B, pool):
        xp = backend.get_xp()
        t, c, y = pool
        check_times(t, t.shape[1], "synthetic input")
        self.t, self.c, self.y = xp.asarray(t), xp.asarray(c), np.asarray(y)
        self.B, self.i = B, 0

    def next(self):
        n = self.t.shape[0]
        if self.i + self.B > n:
            self.i = 0
        sl = slice(self.i, self.i + self.B)
        self.i += self.B
        return mark_checked(SpikeTrains(self.t[sl], self.c[sl], None)), self.y[sl]


def step(net, loss, opt, batch):
    """One training step; the loss is read (one host sync) after the update is queued."""
    x, y = batch
    out = net.forward(x)
    v, g = loss.value_and_grad(out, y)
    net.backward(g)
    opt.step()
    return float(v)


def staged_step(net, loss, opt, batch, xp):
    """One step with every stage bracketed by CUDA events (GPU time of each stage)."""
    import cupy as cp
    marks = []

    def mark(name):
        e = cp.cuda.Event()
        e.record()
        marks.append((name, e))

    x, y = batch
    l1, l2 = net.layers
    s = SETTINGS
    mark("start")
    ev1 = sort_events(x.times, s["tau_s"])
    mark("L1 sort events")
    sim1 = simulate(l1.params["weight"], x.times, s["tau_s"], s["theta"][0], max_spikes=30, t_max=s["t_max"],
                    check=False)
    mark("L1 forward (incl. sort)")
    sort_events(sim1.times, s["tau_s"])
    mark("L2 sort events")
    sim2 = simulate(l2.params["weight"], sim1.times, s["tau_s"], s["theta"][1], max_spikes=30, t_max=s["t_max"],
                    check=False)
    mark("L2 forward (incl. sort)")
    v, g = loss.value_and_grad(sim2.spikes, y)
    mark("loss")
    G1, G2 = spike_factors(sim2.t_cont, sim2.x, sim2.counts, g, s["tau_s"], s["theta"][1], s["theta"][1])
    mark("L2 spike factors")
    dw2 = weight_grad(sim2.in_used, sim2.t_cont, sim2.counts, G1, G2, s["tau_s"])
    mark("L2 weight grad")
    gx = input_grad(l2.params["weight"], sim2.in_used, sim2.t_cont, sim2.counts, G1, G2, s["tau_s"])
    mark("L2 input grad")
    H1, H2 = spike_factors(sim1.t_cont, sim1.x, sim1.counts, gx, s["tau_s"], s["theta"][0], s["theta"][0])
    mark("L1 spike factors")
    dw1 = weight_grad(sim1.in_used, sim1.t_cont, sim1.counts, H1, H2, s["tau_s"])
    mark("L1 weight grad")
    l1.grads["weight"], l2.grads["weight"] = dw1, dw2
    opt.step()
    mark("Adam")
    float(v)
    marks[-1][1].synchronize()
    out = {}
    for (_, e0), (name, e1) in zip(marks[:-1], marks[1:]):
        out[name] = cp.cuda.get_elapsed_time(e0, e1)
    del ev1
    return out


def run(B, steps, warmup, pool, seed=0):
    xp = backend.get_xp()
    net = build(seed)
    loss = SpikeCountLoss(*SETTINGS["targets"])
    opt = Adam(net, lr=SETTINGS["lr"])
    data = Batches(B, pool)
    losses = [step(net, loss, opt, data.next()) for _ in range(warmup)]
    backend.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        losses.append(step(net, loss, opt, data.next()))
    backend.synchronize()
    ms = (time.perf_counter() - t0) / steps * 1e3
    res = {"batch": B, "ms_per_step": ms, "s_per_60k_epoch": ms * 1e-3 * 60000 / B,
           "loss_first": float(losses[0]), "loss_last": float(losses[-1])}
    l1, l2 = net.layers
    res["spikes_per_neuron"] = {"hidden": float(l1.last.counts.mean()), "output": float(l2.last.counts.mean()),
                                "hidden_overflow": float(l1.last.overflow.mean()),
                                "output_overflow": float(l2.last.overflow.mean()),
                                "hidden_silent_share": float((l1.last.counts == 0).mean())}
    if backend.name() == "cupy":
        stages = [staged_step(net, loss, opt, data.next(), xp) for _ in range(10)]
        res["stages_ms"] = {k: float(np.median([s[k] for s in stages])) for k in stages[0]}
        res["peak_pool_bytes"] = int(xp.get_default_memory_pool().total_bytes())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pool", type=int, default=20000, help="synthetic samples to cycle through")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = backend.info()
    print(f"backend {info['backend']} on {info['device']}  ({platform.node()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    pool = synthetic_pool(max(args.pool, max(args.batch)))
    results = []
    for B in args.batch:
        r = run(B, args.steps, args.warmup, pool)
        results.append(r)
        sp = r["spikes_per_neuron"]
        print(f"batch {B:6d}: {r['ms_per_step']:8.3f} ms/step  {r['s_per_60k_epoch']:7.2f} s/60k-epoch  "
              f"loss {r['loss_first']:.1f} -> {r['loss_last']:.1f}  spikes/neuron hidden {sp['hidden']:.2f} "
              f"(overflow {sp['hidden_overflow']:.3f}, silent {sp['hidden_silent_share']:.2f}) output {sp['output']:.2f}")
        if "stages_ms" in r:
            print("   stages (ms, GPU time): " + ", ".join(f"{k} {v:.3f}" for k, v in r["stages_ms"].items()))
            print(f"   memory pool: {r['peak_pool_bytes'] / 2**20:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": {k: str(v) for k, v in info.items()}, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
