"""BATS MNIST training loop against its benchmark step (issue 16).

For each of the two dense reproductions (single-spike TTFS 784-800(1)-10(1), multi-spike count
784-800(30)-10(30); the registry's settings, batch 50) it measures, on the data the reproduction
trains on:

* **step**: the benchmark step of benchmarks/bench_bats.py (forward, loss, backward, Adam, one
  ``float(loss)``) on batches encoded once up front and resident on the device: the bound.
* **loop, plain**: ``Trainer.fit`` with ``device_data=False`` (each batch encoded on the host and
  uploaded, the loss, accuracy and gradient checks read back one by one: the loop before issue 16),
  over ``--n-plain`` samples.
* **loop, device**: ``Trainer.fit`` with the device fast path (data uploaded once, batches encoded
  on the GPU, one readout per step) over the whole training split, two epochs: the second epoch's
  time (the one-time check and upload of the set are reported apart, as the 2-epoch fit time).
* **evaluation**: the study's test pass (``snnkit.bats.study.evaluate``, what the reproduction
  runs after training) and ``Trainer.evaluate`` on the device, over the test set.

ratio = loop seconds per step / step seconds: the issue asks for <= 1.3.

    SNNKIT_BACKEND=cupy SNNKIT_DATA=/tmp/data PYTHONPATH=. python3 benchmarks/profile_bats_loop.py --json out.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from snnkit import backend, datasets
from timing import seconds_per_call
from snnkit.bats import latency_encoder
from snnkit.bats.losses import SpikeCountLoss, TTFSCrossEntropy
from snnkit.bats.study import build_network, evaluate
from snnkit.nn import Adam, Trainer

CONFIGS = {   # the registry's parameters (reproductions/registry.json)
    "single_spike": dict(arch="800-10", theta=[0.7, 2.0], max_spikes=[1, 1], tau_s=0.13, t_max=1.0, t_in=0.1,
                         loss=("ttfs", 0.005), init=(0.0, 1.0), lr=0.002),
    "multi_spike": dict(arch="800-10", theta=[0.2, 1.3], max_spikes=[30, 30], tau_s=0.13, t_max=0.2, t_in=0.1,
                        loss=("count", (15, 3)), init=(-1.0, 1.0), lr=0.003),
}


def make(cfg, seed=0):
    net = build_network(cfg["arch"], 784, cfg["theta"], cfg["max_spikes"], cfg["tau_s"], cfg["t_max"], seed=seed,
                        init=cfg["init"])
    kind, arg = cfg["loss"]
    loss = TTFSCrossEntropy(arg) if kind == "ttfs" else SpikeCountLoss(*arg)
    return net, loss, Adam(net, cfg["lr"])


def sync():
    backend.synchronize()


def bench_step(cfg, x, y, B, steps, warmup):
    """The benchmark step on pre-encoded, device-resident batches (labels NumPy, as in bench_bats)."""
    net, loss, opt = make(cfg)
    enc = latency_encoder(cfg["t_in"])
    xd = enc.prepare(x[:B * 64])
    pool = [enc.on_device(xd[i * B:(i + 1) * B]) for i in range(64)]
    labels = [np.asarray(y[i * B:(i + 1) * B]) for i in range(64)]

    def one(k):          # bench_bats.step
        out = net.forward(pool[k % 64])
        v, g = loss.value_and_grad(out, labels[k % 64])
        net.backward(g)
        opt.step()
        return float(v)
    return seconds_per_call(one, steps, warmup)


def loop(cfg, x, y, B, device_data, epochs=1):
    net, loss, opt = make(cfg)
    tr = Trainer(net, loss, opt, batch_size=B, encode=latency_encoder(cfg["t_in"]), seed=0, progress=False,
                 device_data=device_data)
    tr.fit((x[:B * 4], y[:B * 4]), None, epochs=1)          # warm-up: kernels compiled, pools grown
    tr = Trainer(net, loss, opt, batch_size=B, encode=latency_encoder(cfg["t_in"]), seed=0, progress=False,
                 device_data=device_data)
    sync()
    t0 = time.perf_counter()
    h = tr.fit((x, y), None, epochs=epochs)
    sync()
    secs = time.perf_counter() - t0
    steps = epochs * -(-len(y) // B)
    return secs, steps, h, tr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--stand-in", action="store_true")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n-plain", type=int, default=10000, help="samples for the plain (pre-issue-16) loop")
    ap.add_argument("--n-train", type=int, default=0, help="0: the whole train_full split")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = backend.info()
    print(f"backend {info['backend']} on {info['device']} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    kw = {"stand_in": True} if args.stand_in else {}
    x, y = datasets.load(args.dataset, "train_full", **kw)
    xte, yte = datasets.load(args.dataset, "test", **kw)
    x, y = np.asarray(x), np.asarray(y)
    if args.n_train:
        x, y = x[:args.n_train], y[:args.n_train]
    B, res = args.batch, {"info": {k: str(v) for k, v in info.items()}, "stand_in": args.stand_in}
    for name in args.configs:
        cfg = CONFIGS[name]
        r = {}
        step = bench_step(cfg, x, y, B, args.steps, 20)
        r["step_ms"] = 1e3 * step
        secs, n, _, _ = loop(cfg, x[:args.n_plain], y[:args.n_plain], B, False)
        r["plain_ms_per_step"] = 1e3 * secs / n
        secs, n, h, tr = loop(cfg, x, y, B, "auto", epochs=2)
        n //= 2                                # steps per epoch
        r["device_fit_s_2_epochs"] = secs      # with the one-time check and upload of the set
        r["device_epoch_s"], r["device_steps"] = h["time"][1], n     # the second epoch
        secs = h["time"][1]
        r["device_ms_per_step"] = 1e3 * secs / n
        r["train_acc_epoch2"] = h["train_acc"][1]
        r["step_bound_epoch_s"] = n * step
        r["ratio_plain"] = r["plain_ms_per_step"] / r["step_ms"]
        r["ratio_device"] = r["device_ms_per_step"] / r["step_ms"]
        tr.evaluate(xte[:512], yte[:512])      # warm-up: the eval batch size's first launches
        t0 = time.perf_counter()
        vl, va = tr.evaluate(xte, yte)
        sync()
        r["trainer_evaluate_s"], r["test_acc_epoch2"] = time.perf_counter() - t0, va
        t0 = time.perf_counter()
        summary, _, _ = evaluate(tr.model, xte, yte, encode=latency_encoder(cfg["t_in"]), loss=tr.loss,
                                 t_grid=np.linspace(0, cfg["t_max"], 81))
        r["study_evaluate_s"] = time.perf_counter() - t0
        res[name] = r
        print(f"{name}: step {r['step_ms']:.3f} ms | plain loop {r['plain_ms_per_step']:.3f} ms/step "
              f"({r['ratio_plain']:.2f}x) | device loop {r['device_ms_per_step']:.3f} ms/step "
              f"({r['ratio_device']:.2f}x), epoch {secs:.1f} s for {n} steps (bound {r['step_bound_epoch_s']:.1f} s) | "
              f"eval: trainer {r['trainer_evaluate_s']:.2f} s, study {r['study_evaluate_s']:.2f} s | "
              f"after 2 epochs: train acc {h['train_acc'][1]:.4f}, test acc {va:.4f} (study {summary['accuracy']:.4f})",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
