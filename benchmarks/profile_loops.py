"""Training loop against its benchmark step for the reproductions beyond the dense BATS ones (issue 16).

Networks (the registry's settings, reproductions/registry.json):

* ``bats_conv``     BATS 15C5(1)-P2-40C5(3)-P2-300(10)-10(30), count loss 30 / 3, batch 20, MNIST
* ``s3gd_sparse``   S3GD 784-200-200-10, T 100, log-latency code, sparse backward (delta 0.2),
                    batch 256, Fashion-MNIST
* ``s3gd_dense``    the same network with the fused dense backward
* ``s3gd_shd``      S3GD 700-400-400-20, T 500 (2 ms), sum readout, sparse backward (delta 0.05),
                    batch 128, SHD (``--stand-in``: no copy of SHD reaches the GPU machine); encoder
                    ``EventBinner``: plain loop = each batch binned on the host and uploaded, device
                    loop = the events uploaded once, each batch binned on the GPU
* ``stbp``          STBP-tdBN ResNet-19 (width 128, blocks 3/3/2, FC 256, T 2), batch 64, MNIST

For each (as benchmarks/profile_bats_loop.py does for the dense BATS networks):

* **step**: forward, loss, backward, Adam and one ``float(loss)`` on batches of the real data set
  encoded once up front and resident on the device: the bound.
* **plain loop**: ``Trainer.fit`` with ``device_data=False`` (each batch encoded on the host and
  uploaded; a host check per kind) over ``--steps`` steps.
* **device loop**: ``Trainer.fit`` with ``device_data="auto"`` (set uploaded once, batches encoded on
  the device, one host sync per step) where the encoder supports it; the second of two passes over
  the same ``--steps`` steps' worth of samples (the upload falls in the first).

ratio = loop seconds per step / step seconds (the issue asks for <= 1.3). The S3GD networks take the
registry's settings (reproductions/registry.json: s3gd_fashion_mnist, s3gd_shd_delta_sweep).
``--stand-in`` applies to every data set; ``--stand-in-for shd`` to the named ones only.

    SNNKIT_BACKEND=cupy SNNKIT_DATA=/tmp/data PYTHONPATH=. python3 benchmarks/profile_loops.py --json out.json
    PYTHONPATH=. python3 benchmarks/profile_loops.py --stand-in --small     (CPU smoke run, stand-in data)
    ... profile_loops.py --configs s3gd_sparse s3gd_dense s3gd_shd --stand-in-for shd --peer-check   (issue 16, S3GD)
    ... profile_loops.py --configs s3gd_sparse s3gd_dense --paired 5      (loop and step on the same weights)
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from snnkit import backend, datasets
from snnkit.datasets.events import EventData
from timing import seconds_per_call
from snnkit.nn import Adam, Trainer


def _bats_conv(small):
    from snnkit.bats import latency_encoder
    from snnkit.bats.losses import SpikeCountLoss
    from snnkit.bats.study import build_network

    arch = "2C5-P2-2C5-P2-8-10" if small else "15C5-P2-40C5-P2-300-10"

    def make():
        net = build_network(arch, (28, 28, 1), [0.04, 0.8, 0.6, 0.3], [1, 3, 10, 30],
                            0.13, 0.2, seed=0, init=(-1.0, 1.0))
        return net, SpikeCountLoss(30, 3), Adam(net, 0.003)
    return dict(dataset="mnist", batch=20, make=make, encoder=latency_encoder(0.1), x_shape=(28, 28))


def _registry(name):
    """The parameters of one entry of reproductions/registry.json (the settings profiled here)."""
    from pathlib import Path
    reg = json.loads((Path(__file__).resolve().parent.parent / "reproductions" / "registry.json").read_text())
    return next(e for e in reg["reproductions"] if e["name"] == name)["parameters"]


def _s3gd(sparse):
    def build(small):
        from snnkit import s3gd
        from snnkit.datasets import LogLatencyEncoder
        p = _registry("s3gd_fashion_mnist")
        T, H = (20, 32) if small else (p["n_steps"], p["n_hidden"])
        beta = float(np.exp(-1 / 10))                  # 1 ms steps, tau_mem 10 ms (notebook 04)

        def make():
            net = s3gd.Network(784, H, 10, beta, beta_out=beta, delta=p["delta"], sparse=sparse,
                               readout=p["readout"], seed=0, weight_scale=p["weight_scale"],
                               readout_scale=p["readout_scale"], regularizer=s3gd.ActivityRegularizer(f_up=1.0))
            return net, net.loss(), Adam(net, lr=p["lr"])
        return dict(dataset="fashion_mnist", batch=p["batch_size"], make=make, encoder=LogLatencyEncoder(T),
                    x_shape=None)
    return build


def _s3gd_shd(small):
    """S3GD on SHD as notebook 04 trains it: 700-400-400-20, 500 steps of 2 ms binned from the events
    by ``EventBinner`` (on the GPU in the device loop; ``EventData[idx]`` on the host and uploaded in
    the plain one), sum readout, f_up 10, sparse backward at delta 0.05 (the paper's b_th 0.95),
    notebook 04's default initial scales (the registry sets none for SHD)."""
    from snnkit import s3gd
    from snnkit.datasets import EventBinner
    p = _registry("s3gd_shd_delta_sweep")
    T, H = (50, 32) if small else (p["n_steps"], p["n_hidden"])
    beta = float(np.exp(-2 / 10))                      # 2 ms steps, tau_mem 10 ms

    def make():
        net = s3gd.Network(700, H, 20, beta, beta_out=s3gd.BETA, delta=0.05, sparse=True, readout=p["readout"],
                           seed=0, weight_scale=7.0, readout_scale=5.0,
                           regularizer=s3gd.ActivityRegularizer(f_up=10.0))
        return net, net.loss(), Adam(net, lr=p["lr"])
    return dict(dataset="shd", batch=p["batch_size"], make=make, encoder=EventBinner(T), x_shape=None,
                load_kw=dict(n_steps=T))


def _stbp(small):
    from snnkit.stbp import CrossEntropy, resnet19
    kw = dict(width=8, blocks=(1, 1, 1), fc=32) if small else dict(width=128, blocks=(3, 3, 2), fc=256)

    def make():
        net = resnet19(n_steps=2, in_shape=(28, 28), num_classes=10, norm="tdbn", seed=0, **kw)
        return net, CrossEntropy(), Adam(net, 1e-3)
    return dict(dataset="mnist", batch=64, make=make, encoder=None, x_shape=(28, 28))


CONFIGS = {"bats_conv": _bats_conv, "s3gd_sparse": _s3gd(True), "s3gd_dense": _s3gd(False), "s3gd_shd": _s3gd_shd,
           "stbp": _stbp}


def sync():
    backend.synchronize()


def _step_fn(cfg, model, x, y):
    """One benchmark step of ``model = (net, loss, opt)`` on batches encoded once up front and resident
    on the device: ``one(k)`` trains on batch k mod 16 and ends in one host read of the loss."""
    net, loss, opt = model
    B, enc, xp = cfg["batch"], cfg["encoder"], backend.get_xp()
    n_pool = min(16, len(y) // B)
    if not hasattr(enc, "prepare"):      # no device encoder: batches made (SHD: binned) and uploaded up front
        pool = [xp.asarray(x[i * B:(i + 1) * B]) if enc is None else enc(x[i * B:(i + 1) * B])
                for i in range(n_pool)]
    else:
        xd = enc.prepare(x.subset(np.arange(B * n_pool)) if isinstance(x, EventData) else x[:B * n_pool])
        pool = [enc.on_device(xd[i * B:(i + 1) * B]) for i in range(n_pool)]
    labels = [np.asarray(y[i * B:(i + 1) * B]) for i in range(n_pool)]

    def one(k):
        out = net.forward(pool[k % n_pool])
        v, g = loss(out, xp.asarray(labels[k % n_pool]))
        net.backward(g)
        opt.step()
        return float(v)
    return one


def step_time(cfg, x, y, steps, warmup):
    """Seconds per benchmark step of a fresh network (its initial weights)."""
    return seconds_per_call(_step_fn(cfg, cfg["make"](), x, y), steps, warmup)


def paired_passes(cfg, x, y, passes, steps):
    """Loop and step timed on the same weights, ``passes`` times: one network trains through
    ``Trainer.fit`` (device loop), and after each of its epochs over (x, y) the benchmark step is timed
    on that network as it now is (``steps`` steps, which train it further). Why: the S3GD sparse
    backward's cost depends on how many neurons sit near threshold, which changes as the weights
    train, so a loop on trained weights against a step on initial weights compares two workloads.
    Returns per pass the loop's and the step's seconds per step; the first epoch (the upload) is
    warm-up and not counted."""
    model = cfg["make"]()
    net, loss, opt = model
    B = cfg["batch"]
    tr = Trainer(net, loss, opt, batch_size=B, encode=cfg["encoder"], seed=0, progress=False, device_data="auto")
    tr.fit((x, y), None, epochs=1)                                    # upload, kernels, pools
    one = _step_fn(cfg, model, x, y)
    one(0)
    loop, step = [], []
    for k in range(passes):
        sync()
        h = tr.fit((x, y), None, epochs=k + 2)
        sync()
        loop.append(h["time"][-1] / -(-len(y) // B))
        step.append(seconds_per_call(one, steps, 2))
    return loop, step


def loop_time(cfg, x, y, device_data, epochs):
    """Seconds per step of the last of ``epochs`` passes of Trainer.fit over (x, y)."""
    net, loss, opt = cfg["make"]()
    B = cfg["batch"]
    kw = dict(batch_size=B, encode=cfg["encoder"], seed=0, progress=False, device_data=device_data)
    Trainer(net, loss, opt, **kw).fit((x[:B * 2], y[:B * 2]), None, epochs=1)      # warm-up: kernels, pools
    tr = Trainer(net, loss, opt, **kw)
    sync()
    h = tr.fit((x, y), None, epochs=epochs)
    sync()
    return h["time"][-1] / -(-len(y) // B), tr


def _step_stats_before(value, correct, grads, params=()):
    """The Trainer's per-step read-back as it was before the one-launch-per-array count (commit
    4d8cf06): isfinite, all and an & per array. Kept here only as the peer of ``--peer-check``."""
    from snnkit.backend import xp_of
    xp = xp_of(correct)
    if xp is np:
        from snnkit.nn.trainer import _step_stats
        return _step_stats(value, correct, grads, params)
    out = xp.empty(4, dtype=xp.float64)
    out[0] = value
    out[1] = correct
    for slot, arrays in ((2, grads), (3, params)):
        ok = None
        for a in arrays:
            f = xp.isfinite(a).all()
            ok = f if ok is None else ok & f
        out[slot] = True if ok is None else ok
    v, c, gok, pok = out.get().tolist()
    return v, int(c), bool(np.isfinite(v)), bool(gok), bool(pok)


def device_loop_with_previous_check(cfg, x, y):
    """The device loop timed with the previous finiteness check swapped in (same process, same data)."""
    from snnkit.nn import trainer as trainer_module
    now = trainer_module._step_stats
    trainer_module._step_stats = _step_stats_before
    try:
        return loop_time(cfg, x, y, "auto", 2)[0]
    finally:
        trainer_module._step_stats = now


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--steps", type=int, default=100, help="steps per timed loop pass and per step timing")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--stand-in", action="store_true", help="stand-in data for every data set")
    ap.add_argument("--stand-in-for", nargs="+", default=[], metavar="DATASET",
                    help="stand-in data for these data sets only (e.g. shd, whose files do not reach the GPU machine)")
    ap.add_argument("--small", action="store_true", help="tiny networks (a CPU smoke run of this script)")
    ap.add_argument("--peer-check", action="store_true",
                    help="also time the device loop with the previous per-step finiteness check (3 launches "
                         "per array instead of 1)")
    ap.add_argument("--paired", type=int, default=0, metavar="N",
                    help="also N passes of device loop and step timed on the same, training weights (paired_passes)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = backend.info()
    print(f"backend {info['backend']} on {info['device']} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
          flush=True)
    res = {"info": {k: str(v) for k, v in info.items()}, "stand_in": args.stand_in,
           "stand_in_for": args.stand_in_for, "steps": args.steps}
    cache = {}
    for name in args.configs:
        cfg = CONFIGS[name](args.small)
        if cfg["dataset"] not in cache:
            stand_in = args.stand_in or cfg["dataset"] in args.stand_in_for
            d = datasets.load(cfg["dataset"], "train_full", stand_in=stand_in, **cfg.get("load_kw", {}))
            # event data (SHD) stays an EventData: its batches are binned on indexing
            cache[cfg["dataset"]] = (d.x if isinstance(d.x, EventData) else np.asarray(d.x), np.asarray(d.y))
        x, y = cache[cfg["dataset"]]
        n = min(len(y), cfg["batch"] * args.steps)
        x, y = (x.subset(np.arange(n)) if isinstance(x, EventData) else x[:n]), y[:n]
        if cfg["x_shape"] is not None and x.ndim == 2:
            x = x.reshape((len(x),) + cfg["x_shape"])
        r = {"batch": cfg["batch"], "steps": -(-n // cfg["batch"]),
             "stand_in": bool(args.stand_in or cfg["dataset"] in args.stand_in_for)}
        t0 = time.perf_counter()
        r["step_ms"] = 1e3 * step_time(cfg, x, y, args.steps, args.warmup)
        r["plain_ms_per_step"] = 1e3 * loop_time(cfg, x, y, False, 1)[0]
        r["ratio_plain"] = r["plain_ms_per_step"] / r["step_ms"]
        enc = cfg["encoder"]
        if enc is not None and hasattr(enc, "on_device"):
            r["device_ms_per_step"] = 1e3 * loop_time(cfg, x, y, "auto", 2)[0]
            r["ratio_device"] = r["device_ms_per_step"] / r["step_ms"]
            if args.peer_check:
                r["device_previous_check_ms_per_step"] = 1e3 * device_loop_with_previous_check(cfg, x, y)
                r["ratio_device_previous_check"] = r["device_previous_check_ms_per_step"] / r["step_ms"]
            if args.paired:
                loop, step = paired_passes(cfg, x, y, args.paired, args.steps)
                ratios = [a / b for a, b in zip(loop, step)]
                r["paired"] = dict(loop_ms=[1e3 * v for v in loop], step_ms=[1e3 * v for v in step], ratios=ratios,
                                   ratio_median=float(np.median(ratios)), ratio_min=min(ratios),
                                   ratio_max=max(ratios))
        r["profile_s"] = time.perf_counter() - t0
        res[name] = r
        print(f"{name}: step {r['step_ms']:.3f} ms | plain loop {r['plain_ms_per_step']:.3f} ms/step "
              f"({r['ratio_plain']:.2f}x)" + (f" | device loop {r['device_ms_per_step']:.3f} ms/step "
                                               f"({r['ratio_device']:.2f}x)" if "ratio_device" in r else "")
              + (f" | previous check {r['device_previous_check_ms_per_step']:.3f} ms/step "
                 f"({r['ratio_device_previous_check']:.2f}x)" if "ratio_device_previous_check" in r else "")
              + f" | {r['profile_s']:.1f} s", flush=True)
        if "paired" in r:
            q = r["paired"]
            print(f"    paired ({len(q['ratios'])} passes, same weights): loop " +
                  " ".join(f"{v:.3f}" for v in q["loop_ms"]) + " ms/step | step " +
                  " ".join(f"{v:.3f}" for v in q["step_ms"]) + f" ms | ratio median {q['ratio_median']:.2f}x "
                  f"(range {q['ratio_min']:.2f}-{q['ratio_max']:.2f})", flush=True)
        if args.json:                      # after each network: a run cut short keeps what it measured
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
