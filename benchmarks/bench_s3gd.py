"""S3GD backward benchmark (GPU): our sparse backward, our fused dense backward and PyTorch autograd
dense BPTT (Python time loop, written here) of the same network on the same inputs and weights.

    PYTHONPATH=. python3 benchmarks/bench_s3gd.py [--config shd fashion] [--reps 20] [--json out.json]
        [--train-steps 40] [--stages] [--no-torch]

Configurations (issue 5): the network input -> LIF(N) -> LIF(N) -> leaky readout.
* shd:     700 inputs, N = 400, T = 500, batch 128, delta 0.05, dt 2 ms (beta 0.8187), sum readout, 20 classes
* fashion: 784 inputs, N = 200, T = 100, batch 256, delta 0.2,  dt 1 ms (beta 0.9048), max readout, 10 classes
Inputs are random spikes (SHD: Poisson, Fashion: at most one spike per input, like the log-latency
code); the hidden weights are N(mu, (spread 7 (1 - beta))^2 / n_in) with mu bisected until the
hidden layers spike in about 1% (layer 1) and 0.5% (layer 2) of their entries, the paper's activity.
The spread (3 for SHD, 6 for Fashion) is chosen so that the *active* fractions also land near the
paper's (SHD at delta 0.05: 0.50% / 0.14%; Fashion at delta 0.2: about 1%); with spread 1 the
membrane potentials crowd the threshold and the band holds 14% of Fashion's layer-1 entries.
Timed: the whole network's backward (both hidden layers and the readout, compaction included),
CUDA-synchronized wall clock, median over --reps after warm-up; memory: peak allocator bytes
during the backward minus the bytes held before it (CuPy memory-pool hook / torch max_memory_allocated).
On a GPU the sparse path is also timed as a CUDA-graph replay (``Network(cuda_graph=True)``,
snnkit/s3gd/graph.py); a replay allocates nothing, so its memory is the workspace its capture holds.
(The dense path cannot be captured: CuPy refuses cuBLAS calls in a capture; it is GPU-bound anyway.)
``--train-steps K``: K whole training steps per path (forward, loss, backward, Adam) over 4 batches,
with the graphed backward's replay and capture counts (does the graph survive real training?).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CONFIGS = {
    "shd": dict(n_in=700, N=400, T=500, B=128, delta=0.05, beta=float(np.exp(-2 / 10)), C=20,
                readout="sum", input="poisson", rate=0.01, spread=3.0, anchor_bwd=202.5, anchor_mem=294,
                anchor_fwd=106.6),
    "fashion": dict(n_in=784, N=200, T=100, B=256, delta=0.2, beta=float(np.exp(-1 / 10)), C=10,
                    readout="max", input="once", rate=0.5, spread=6.0, anchor_bwd=42.3, anchor_mem=58,
                    anchor_fwd=None),
    # a seconds-long CPU/GPU smoke test of this script (not a result)
    "smoke": dict(n_in=30, N=20, T=40, B=8, delta=0.2, beta=float(np.exp(-1 / 10)), C=5,
                  readout="max", input="poisson", rate=0.05, spread=1.0, anchor_bwd=float("nan"), anchor_mem=0,
                  anchor_fwd=None),
}
TARGET_ACTIVITY = (0.01, 0.005)
BETA_OUT = 0.905


def make_input(cfg, seed=0):
    r = np.random.default_rng(seed)
    B, T, n = cfg["B"], cfg["T"], cfg["n_in"]
    if cfg["input"] == "poisson":
        return (r.random((B, T, n), dtype=np.float32) < cfg["rate"]).astype(np.float32)
    x = np.zeros((B, T, n), np.float32)
    b, i = np.nonzero(r.random((B, n)) < cfg["rate"])
    x[b, r.integers(0, min(T, 60), b.size), i] = 1
    return x


def calibrate(layer, s_in, target, z, spread):
    """Bisect the weight mean mu so that the layer spikes in ``target`` of its entries."""
    from snnkit.backend import to_device
    std = spread * 7 * (1 - layer.beta) / np.sqrt(layer.n_in)

    def activity(mu):
        layer.params["weight"] = to_device((mu + std * z).astype(np.float32))
        return float(layer.forward(s_in).mean())

    lo, hi = -3 * std, 3 * std
    while activity(hi) < target:
        hi *= 2
    while activity(lo) > target:
        lo *= 2
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if activity(mid) < target else (lo, mid)
    return activity(0.5 * (lo + hi))


def calibrated_network(name):
    """The benchmark's network of configuration ``name`` with its hidden weights calibrated to the
    paper's activity, its input and labels: (net, x_np, y_np, x, y) (x, y on the backend's device)."""
    from snnkit.backend import to_device
    from snnkit.s3gd import Network
    cfg = CONFIGS[name]
    x_np = make_input(cfg)
    y_np = np.random.default_rng(1).integers(0, cfg["C"], cfg["B"])
    net = Network(cfg["n_in"], cfg["N"], cfg["C"], cfg["beta"], beta_out=BETA_OUT, delta=cfg["delta"],
                  readout=cfg["readout"], seed=0)
    x = to_device(x_np)
    z, s = np.random.default_rng(2), x
    for layer, target in zip(net.hidden, TARGET_ACTIVITY):
        calibrate(layer, s, target, z.normal(size=(layer.n_in, layer.n_out)), cfg["spread"])
        s = layer.forward(s)
    return net, x_np, y_np, x, to_device(y_np)


def median_ms(fn, reps, sync):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(ts))


def bench_ours(net, x, y, reps):
    from snnkit.backend import name as backend_name, synchronize
    from snnkit.s3gd import PeakMemory, active_fractions, backward_profile
    from snnkit.s3gd.graph import BackwardGraphs
    res = {}
    loss = net.loss()
    on_gpu = backend_name() == "cupy"
    for mode, graph in (("dense", False), ("sparse", False), ("sparse", True)):
        if graph and not on_gpu:
            continue
        net.sparse, net.cuda_graph, net.graphs = mode == "sparse", graph, BackwardGraphs()
        fwd = median_ms(lambda: net.forward(x), reps, synchronize)
        _, g = loss(net.forward(x), y)

        def bwd():
            for h in net.hidden:
                h.compaction.forget()                       # compaction is part of every sparse backward
            net.backward(g)
        t = median_ms(bwd, reps, synchronize)
        for h in net.hidden:
            h.compaction.forget()
        with PeakMemory(on_gpu) as m:
            net.backward(g)
        key = mode + ("_graph" if graph else "")
        # a replay allocates nothing: its memory is the workspace its capture kept (one graph here)
        mib = (net.graphs.workspace_bytes if graph else m.peak_bytes) / 2**20
        res[key] = dict(forward_ms=fwd, backward_ms=t, backward_mib=mib)
        if graph:
            res[key].update(captures=net.graphs.captures, replays=net.graphs.replays)
    net.sparse, net.cuda_graph, net.graphs = True, False, BackwardGraphs()
    net.forward(x)
    res["active_fraction"] = {k: v[0] for k, v in active_fractions(net).items()}
    res["spike_fraction"] = [float(s.mean()) for s in net.spikes()]
    res["profile"] = backward_profile(net, x, y, repeats=max(3, reps // 4))
    for m in res["profile"].values():
        m["memory_mib"] = m.pop("memory_bytes") / 2**20
    return res


def bench_training(net, cfg, steps, n_batches=4):
    """Whole training steps (forward, loss, backward, Adam) cycling over ``n_batches`` fresh input
    batches already on the device: ms per step (median), and for the graphed backward how many
    backwards were replays and how many needed a new capture (a forward whose arrays landed at new
    addresses)."""
    import copy
    from snnkit.backend import is_cupy_array, synchronize, to_device
    from snnkit.nn import Adam
    from snnkit.s3gd.graph import BackwardGraphs
    xs = [to_device(make_input(cfg, seed=100 + k)) for k in range(n_batches)]
    ys = [to_device(np.random.default_rng(200 + k).integers(0, cfg["C"], cfg["B"])) for k in range(n_batches)]
    out = {}
    on_gpu = is_cupy_array(net.readout.params["weight"])
    for mode, graph in (("dense", False), ("sparse", False), ("sparse", True))[:3 if on_gpu else 2]:
        n = copy.deepcopy(net)                 # the same start for every mode
        n.sparse, n.cuda_graph, n.graphs = mode == "sparse", graph, BackwardGraphs()
        opt, loss = Adam(n, lr=1e-4), n.loss()
        ts = []
        for k in range(steps + 3):
            synchronize()
            t0 = time.perf_counter()
            _, g = loss(n.forward(xs[k % n_batches]), ys[k % n_batches])
            n.backward(g)
            opt.step()
            synchronize()
            if k >= 3:
                ts.append(1e3 * (time.perf_counter() - t0))
        key = mode + ("_graph" if graph else "")
        out[key] = dict(step_ms=float(np.median(ts)), overflows=n.overflows)
        if graph:
            out[key].update(captures=n.graphs.captures, replays=n.graphs.replays,
                            workspace_mib=n.graphs.workspace_bytes / 2**20)
    return out


def bench_torch(x_np, y_np, Ws, cfg, reps):
    import torch
    dev = "cuda"
    x = torch.as_tensor(x_np, device=dev)
    y = torch.as_tensor(y_np, device=dev, dtype=torch.long)
    W = [torch.as_tensor(w, device=dev).requires_grad_() for w in Ws]
    beta, N = cfg["beta"], cfg["N"]

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 1.0).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            v, = ctx.saved_tensors
            return g / (100.0 * (v - 1.0).abs() + 1.0) ** 2

    def lif(inp, w):
        h = inp @ w
        v = torch.zeros_like(h[:, 0])
        s = torch.zeros_like(v)
        out = []
        for t in range(h.shape[1]):
            v = beta * v + h[:, t] - s.detach()              # detached subtractive reset
            s = Spike.apply(v)
            out.append(s)
        return torch.stack(out, 1)

    def reg(S):
        c = S.sum(1)
        up = 0.06 * torch.relu(c.sum(1) / N - 1.0)
        low = 100.0 * (torch.relu(1e-3 - c) ** 2).sum(1) / N
        return (up + low).mean()

    def forward():
        s1 = lif(x, W[0])
        s2 = lif(s1, W[1])
        z = s2 @ W[2]
        o = torch.zeros_like(z[:, 0])
        outs = []
        for t in range(z.shape[1]):
            o = BETA_OUT * o + (1 - BETA_OUT) * z[:, t]
            outs.append(o)
        out = torch.stack(outs, 1)
        logits = out.max(1).values if cfg["readout"] == "max" else out.sum(1)
        return torch.nn.functional.cross_entropy(logits, y) + reg(s1) + reg(s2)

    sync = torch.cuda.synchronize
    with torch.no_grad():
        fwd = median_ms(forward, max(3, reps // 4), sync)
    times, mems = [], []
    for i in range(max(3, reps // 4) + 2):
        for w in W:
            w.grad = None
        loss = forward()
        sync()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss.backward()
        sync()
        if i >= 2:
            times.append(1e3 * (time.perf_counter() - t0))
            mems.append((torch.cuda.max_memory_allocated() - before) / 2**20)
        del loss
    grads = [w.grad.detach().cpu().numpy() for w in W]
    return dict(forward_ms=fwd, backward_ms=float(np.median(times)), backward_mib=float(np.max(mems))), grads


def stage_times(net, x, y, n_repeat=50):
    """Host (CPU) and device (GPU) time of each stage of the sparse backward, alone, ms
    (cupyx.profiler.benchmark): which stages are launch-bound and which are kernel-bound."""
    from cupyx.profiler import benchmark
    from snnkit.s3gd import sparse as sp
    from snnkit.s3gd.sparse import compact, settle_layers
    h1, h2 = net.hidden
    net.sparse = True
    _, g = net.loss()(net.forward(x), y)

    def fresh_compact():
        for h in net.hidden:
            h.compaction.forget()
        return compact(net.hidden)

    def deferred_compact():                          # what the backward does after its first step
        for h in net.hidden:
            h.compaction.forget()
        sets = compact(net.hidden, deferred=True)
        settle_layers(net.hidden)
        return sets

    def whole():
        for h in net.hidden:
            h.compaction.forget()
        net.backward(g)
    a1, a2 = fresh_compact()
    r1, r2 = (net.regularizer.grad_from_counts(c) for c in net.counts)
    ga = net.readout.backward(g, at=a2)
    g2 = sp.entry_grad(ga.values, a2, r2, h2.threshold, h2.scale)
    gin = sp.sparse_input_grad(g2, a2, a1, h2.params["weight"], h2.beta)
    g1 = sp.entry_grad(gin, a1, r1, h1.threshold, h1.scale)
    stages = {
        "regularizer grads (2 layers)": lambda: [net.regularizer.grad_from_counts(c) for c in net.counts],
        "compact (2 layers, 1 sync)": fresh_compact,
        "compact deferred + settle (2 layers)": deferred_compact,
        "readout backward at A2": lambda: net.readout.backward(g, at=a2),
        "hidden2 entry grad": lambda: sp.entry_grad(ga.values, a2, r2, h2.threshold, h2.scale),
        "hidden2 weight grad": lambda: sp.sparse_weight_grad(g2, a2, h2.trace),
        "hidden2 input grad at A1": lambda: sp.sparse_input_grad(g2, a2, a1, h2.params["weight"], h2.beta),
        "hidden1 entry grad": lambda: sp.entry_grad(gin, a1, r1, h1.threshold, h1.scale),
        "hidden1 weight grad": lambda: sp.sparse_weight_grad(g1, a1, h1.trace),
        "whole sparse backward": whole,
    }
    out = {}
    for label, fn in stages.items():
        r = benchmark(fn, n_repeat=n_repeat, n_warmup=5)
        out[label] = dict(cpu_ms=1e3 * float(np.median(r.cpu_times)), gpu_ms=1e3 * float(np.median(r.gpu_times[0])))
    whole()
    return out


def run(name, reps, stages=False, with_torch=True, train_steps=0):
    from snnkit.backend import to_device, to_numpy
    from snnkit.s3gd.instruments import cosine
    cfg = CONFIGS[name]
    net, x_np, y_np, x, _ = calibrated_network(name)
    ours = bench_ours(net, x, to_device(y_np), reps)
    if train_steps:
        ours["training"] = bench_training(net, cfg, train_steps)
    if stages:
        ours["stages"] = stage_times(net, x, to_device(y_np))
    Ws = [to_numpy(l.params["weight"]) for l in net.layers]
    try:
        if not with_torch:
            raise ImportError("--no-torch")
        torch_res, torch_grads = bench_torch(x_np, y_np, Ws, cfg, reps)
    except (ImportError, AssertionError, RuntimeError) as e:       # no torch / no CUDA torch
        print(f"PyTorch baseline skipped: {type(e).__name__}: {e}")
        nan = float("nan")
        torch_res, torch_grads = dict(forward_ms=nan, backward_ms=nan, backward_mib=nan), None
    # the three paths compute the same dense gradient (up to float32 summation order)
    net.sparse = False
    loss = net.loss()
    _, g = loss(net.forward(x), to_device(y_np))
    net.backward(g)
    dense_vs_torch = ([] if torch_grads is None else
                      [cosine(to_numpy(l.grads["weight"]), tg) for l, tg in zip(net.layers, torch_grads)])
    out = dict(config=name, settings={k: v for k, v in cfg.items()}, ours=ours, torch=torch_res,
               cos_dense_vs_torch=dense_vs_torch)
    sp, de, tb = ours["sparse"]["backward_ms"], ours["dense"]["backward_ms"], torch_res["backward_ms"]
    if "sparse_graph" in ours:
        sg = ours["sparse_graph"]["backward_ms"]
        out["speedup_graph"] = dict(sparse_graph_vs_fused_dense=de / sg, sparse_graph_vs_torch=tb / sg, sparse_graph_vs_anchor=cfg["anchor_bwd"] / sg,
                                    memory_sparse_graph_over_dense=ours["sparse_graph"]["backward_mib"]
                                    / ours["dense"]["backward_mib"])
    out["speedup"] = dict(sparse_vs_torch=tb / sp, sparse_vs_fused_dense=de / sp,
                          sparse_vs_anchor=cfg["anchor_bwd"] / sp,
                          fused_fwd_vs_torch_fwd=torch_res["forward_ms"] / ours["dense"]["forward_ms"],
                          memory_sparse_over_dense=ours["sparse"]["backward_mib"] / ours["dense"]["backward_mib"],
                          memory_sparse_over_torch=ours["sparse"]["backward_mib"] / torch_res["backward_mib"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", nargs="+", default=["shd", "fashion"], choices=list(CONFIGS))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", default=None)
    ap.add_argument("--stages", action="store_true", help="also time each sparse-backward stage alone")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    ap.add_argument("--train-steps", type=int, default=0,
                    help="also time this many whole training steps per path (GPU: graph hit rate)")
    a = ap.parse_args(argv)
    from snnkit.backend import info
    dev = info()
    print(f"device: {dev['device']}  backend: {dev['backend']}")
    results = {"device": dev["device"], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": "PYTHONPATH=. python3 benchmarks/bench_s3gd.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "runs": []}
    for name in a.config:
        r = run(name, a.reps, stages=a.stages, with_torch=not a.no_torch, train_steps=a.train_steps)
        results["runs"].append(r)
        o, t, sp = r["ours"], r["torch"], r["speedup"]
        print(f"\n== {name}: spike fraction L1/L2 {o['spike_fraction'][0]:.4f}/{o['spike_fraction'][1]:.4f}, "
              f"active fraction {o['active_fraction']}")
        print(f"{'path':<22}{'forward ms':>12}{'backward ms':>13}{'bwd MiB':>10}")
        rows = [("ours sparse", o["sparse"]), ("ours fused dense", o["dense"])]
        rows += [("ours sparse + graph", o["sparse_graph"])] if "sparse_graph" in o else []
        for label, d in rows + [("pytorch dense", t)]:
            print(f"{label:<22}{d['forward_ms']:>12.3f}{d['backward_ms']:>13.3f}{d['backward_mib']:>10.1f}")
        print("speedups:", {k: round(v, 2) for k, v in sp.items()})
        if "speedup_graph" in r:
            print("speedups (graph):", {k: round(v, 2) for k, v in r["speedup_graph"].items()})
        if "training" in o:
            print("training steps:", o["training"])
        print("per-layer profile (ms):", {m: {k: round(v, 3) for k, v in d["layers_ms"].items()}
                                          for m, d in o["profile"].items()})
        print("cosine(ours dense, torch) per layer:", [round(c, 6) for c in r["cos_dense_vs_torch"]])
        for label, d in o.get("stages", {}).items():
            print(f"  stage {label:<30} host {d['cpu_ms']:.3f} ms  device {d['gpu_ms']:.3f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
