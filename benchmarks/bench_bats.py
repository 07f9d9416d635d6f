"""BATS training-step benchmark: the MNIST spike-count network of the paper, synthetic inputs.

Workload (issue 3): 784-800(30)-10(30), tau_s 0.13, theta 0.2 / 1.3, delta_theta = theta, t_max 0.2,
weights U(-1, 1), Adam lr 0.003, count targets 15 / 3. Each of the 784 pixels is active with
probability 0.19, intensity x ~ U(0, 1), one spike at t = 0.1 (1 - x). One step = forward, loss,
backward, Adam update. The public CuPy implementation: 7.5 ms/step at batch 50, 21 ms at batch 200
(H100).

    python benchmarks/bench_bats.py --batch 50 200 4096 --steps 100 --json out.json
    python benchmarks/bench_bats.py --graph --peer /path/to/public/bats --batch 50 200 1000

Prints per-step time (mean over ``--steps`` after ``--warmup`` training steps), a per-stage
breakdown (GPU event time of each stage, one instrumented step repeated), and spikes per neuron.

``--graph`` also times the same step captured as a CUDA graph (``snnkit.bats.graph.GraphStep``),
from the same initial weights on the same batches, reports the largest weight difference to the
eager run after the timed steps (0: the same numbers), and the GPU time of one replay (CUDA events
around back-to-back replays, no host sync between them). ``--peer PATH`` runs the public BATS code
(github.com/Florian-BACHO/bats; PATH holds its ``bats`` package, with its Adam patched for NumPy 2
scalar promotion; it is never part of this repository) on the same workload in the same process:
784-800(30)-10(30), the same settings, its own U(-1, 1) initial weights, its own step (forward,
loss and errors, backward, batch-mean of its per-sample gradients, Adam, apply), one host sync
(``loss.get()``) per step as ours, inputs and labels already on the GPU.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
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
    res["_weights"] = [l.params["weight"].copy() for l in net.layers]   # before the staged steps train on
    if backend.name() == "cupy":
        stages = [staged_step(net, loss, opt, data.next(), xp) for _ in range(10)]
        res["stages_ms"] = {k: float(np.median([s[k] for s in stages])) for k in stages[0]}
        res["peak_pool_bytes"] = int(xp.get_default_memory_pool().total_bytes())
    return res


def run_graph(B, steps, warmup, pool, seed=0, eager_weights=None, staged_forward=None):
    """The same workload as ``run`` through GraphStep; the weights after the timed steps are
    compared with the eager run's (same seed, same batches)."""
    import cupy as cp
    from snnkit.bats.graph import GraphStep
    net = build(seed)
    loss = SpikeCountLoss(*SETTINGS["targets"])
    opt = Adam(net, lr=SETTINGS["lr"])
    gstep = GraphStep(net, loss, opt, staged_forward=staged_forward)
    data = Batches(B, pool)
    losses = [float(gstep(*data.next())) for _ in range(warmup)]
    backend.synchronize()
    host = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = data.next()
        h0 = time.perf_counter()
        v = gstep(*batch)
        host += time.perf_counter() - h0
        losses.append(float(v))
    backend.synchronize()
    ms = (time.perf_counter() - t0) / steps * 1e3
    res = {"batch": B, "ms_per_step": ms, "host_call_ms": host / steps * 1e3,
           "loss_first": losses[0], "loss_last": losses[-1],
           "captures": gstep.captures, "replays": gstep.replays, "eager_steps": gstep.eager,
           "workspace_MiB": gstep.workspace_bytes / 2 ** 20}
    if eager_weights is not None:
        res["max_abs_weight_diff_vs_eager"] = max(float(cp.abs(l.params["weight"] - w).max())
                                                  for l, w in zip(net.layers, eager_weights))
    # GPU time of one replay: back-to-back replays on the same batch, events around them (this
    # trains on, which does not matter for a timing)
    batch = data.next()
    gstep(*batch)
    g = next(iter(gstep.graphs.values()))
    stream = cp.cuda.get_current_stream()
    for _ in range(3):
        g.graph.launch(stream=stream)
    a, b = cp.cuda.Event(), cp.cuda.Event()
    a.record()
    for _ in range(20):
        g.graph.launch(stream=stream)
    b.record()
    b.synchronize()
    res["replay_gpu_ms"] = cp.cuda.get_elapsed_time(a, b) / 20
    return res


def run_peer(path, B, steps, warmup, pool, seed=0):
    """The public BATS implementation on the same workload (see the module docstring)."""
    import cupy as cp
    sys.path.insert(0, path)
    from bats.Network import Network as PeerNetwork
    from bats.Layers import InputLayer, LIFLayer
    from bats.Losses import SpikeCountClassLoss
    from bats.Optimizers import AdamOptimizer
    s = SETTINGS
    cp.random.seed(seed)

    def init(n_post, n_pre):
        return cp.random.uniform(-1.0, 1.0, size=(n_post, n_pre), dtype=cp.float32)

    net = PeerNetwork()
    inp = InputLayer(n_neurons=784, name="input")
    net.add_layer(inp, input=True)
    hid = LIFLayer(previous_layer=inp, n_neurons=800, tau_s=s["tau_s"], theta=s["theta"][0],
                   delta_theta=s["theta"][0], weight_initializer=init, max_n_spike=s["max_spikes"], name="hidden")
    net.add_layer(hid)
    out = LIFLayer(previous_layer=hid, n_neurons=10, tau_s=s["tau_s"], theta=s["theta"][1],
                   delta_theta=s["theta"][1], weight_initializer=init, max_n_spike=s["max_spikes"], name="output")
    net.add_layer(out)
    loss_fct = SpikeCountClassLoss(target_false=s["targets"][1], target_true=s["targets"][0])
    opt = AdamOptimizer(learning_rate=s["lr"])
    t_all, c_all, y_all = (cp.asarray(a) for a in pool)
    c_all = c_all.astype(cp.int32)
    n = t_all.shape[0]
    state = {"i": 0}

    def step():
        i = state["i"] if state["i"] + B <= n else 0
        state["i"] = i + B
        net.reset()
        net.forward(t_all[i:i + B], c_all[i:i + B], max_simulation=s["t_max"], training=True)
        o, n_o = net.output_spike_trains
        loss, errors = loss_fct.compute_loss_and_errors(o, n_o, y_all[i:i + B])
        grads = net.backward(errors)
        avg = [None if g is None else cp.mean(g, axis=0) for g in grads]
        net.apply_deltas(opt.step(avg))
        return float(loss.get().mean())

    losses = [step() for _ in range(warmup)]
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        losses.append(step())
    cp.cuda.Device().synchronize()
    ms = (time.perf_counter() - t0) / steps * 1e3
    return {"batch": B, "ms_per_step": ms, "loss_first": losses[0], "loss_last": losses[-1],
            "hidden_spikes_per_neuron": float(hid.spike_trains[1].mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pool", type=int, default=20000, help="synthetic samples to cycle through")
    ap.add_argument("--graph", action="store_true", help="also time the step captured as a CUDA graph")
    ap.add_argument("--graph-variants", action="store_true",
                    help="also time the graph with every layer on the staged forward, and with none")
    ap.add_argument("--peer", default=None, metavar="PATH",
                    help="folder holding the public BATS code's `bats` package: run it beside ours")
    ap.add_argument("--peer-steps", type=int, default=None, help="timed steps of the peer (default: --steps)")
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
        weights = r.pop("_weights")
        variants = ([("graph", None)] if args.graph else []) + \
            ([("graph_all_staged", True), ("graph_plain", False)] if args.graph_variants else [])
        for label, staged in variants:
            g = run_graph(B, args.steps, args.warmup, pool, eager_weights=weights, staged_forward=staged)
            r[label] = g
            print(f"   {label}: {g['ms_per_step']:8.3f} ms/step ({r['ms_per_step'] / g['ms_per_step']:.2f}x eager), "
                  f"replay GPU time {g['replay_gpu_ms']:.3f} ms, host time of the call {g['host_call_ms']:.3f} ms, loss {g['loss_first']:.1f} -> {g['loss_last']:.1f}, "
                  f"max |w_graph - w_eager| {g['max_abs_weight_diff_vs_eager']:.3g}, captures {g['captures']}, "
                  f"replays {g['replays']}, eager {g['eager_steps']}, workspace {g['workspace_MiB']:.0f} MiB")
        if args.peer:
            p = run_peer(args.peer, B, args.peer_steps or args.steps, args.warmup, pool)
            r["peer"] = p
            best = min([r["ms_per_step"]] + [r[k]["ms_per_step"] for k in ("graph", "graph_all_staged", "graph_plain")
                                             if k in r])
            print(f"   public BATS: {p['ms_per_step']:8.3f} ms/step (ours {p['ms_per_step'] / best:.1f}x faster), "
                  f"loss {p['loss_first']:.1f} -> {p['loss_last']:.1f}, hidden spikes/neuron "
                  f"{p['hidden_spikes_per_neuron']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": {k: str(v) for k, v in info.items()}, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
