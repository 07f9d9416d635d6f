"""STBP + tdBN benchmarks (GPU): the fused multi-step LIF against the memory-bandwidth floor, and one
ResNet-19 training step (MNIST 28x28, T = 2, batch 64, Adam) -- each beside PyTorch on the same GPU.

    python benchmarks/bench_stbp.py [--lif [--lif-variants]] [--resnet] [--json out.json]

LIF: forward + backward of 2^22 neurons for T in {2, 4, 8, 32}. The floor is 5 passes of T*N float32
(read x, write o; read x, read dL/do, write dL/dx) at the measured device-to-device copy bandwidth.
Reported: the pure functions lif_forward + lif_backward (Python dispatch included) and the two
kernels launched back to back (device time), vs a PyTorch eager time loop with autograd.

ResNet-19: published widths (128/256/512, blocks 3/3/2, FC 256), tdBN, direct input, non-spiking
readout, softmax cross-entropy, snnkit's Adam; GEMMs through cupy.matmul (cuBLAS), once in FP32
and once with TF32 tensor cores (CUPY_TF32=1, set before CuPy is imported, in a subprocess).
PyTorch baseline: the same network with cuDNN convolutions and BatchNorm2d (eager, autograd).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from timing import gpu_ms  # noqa: E402  (beside this script)


def copy_bandwidth(cp, nbytes=1 << 30):
    src = cp.ones(nbytes // 4, cp.float32)
    dst = cp.empty_like(src)
    ms = gpu_ms(cp, lambda: dst.__setitem__(Ellipsis, src), 20)
    return 2 * nbytes / (ms * 1e-3)                       # bytes read + written per second


def bench_lif(Ts=(2, 4, 8, 32), N=1 << 22, variants=False):
    """``variants``: also time the two kernels for every neurons-per-thread V in {1, 2, 4, 8} (T <= 4;
    V = 1 beyond) and block size in {128, 256} (the launcher's rule is snnkit.stbp.lif._per_thread
    with 256 threads)."""
    import cupy as cp
    from snnkit.stbp import lif as L
    bw = copy_bandwidth(cp)
    rows = []
    for T in Ts:
        r = cp.random.RandomState(T)
        x = r.standard_normal((T, N), dtype=cp.float32) * 0.5 + 0.3
        g = r.standard_normal((T, N), dtype=cp.float32)

        def api():
            L.lif_forward(x)
            L.lif_backward(g, x)
        api_ms = gpu_ms(cp, api, 50)
        o, gx = cp.empty_like(x), cp.empty_like(x)
        scal_f = (np.float32(0.25), np.float32(0.4))
        scal_b = (*scal_f, np.float32(0.5), np.int32(0))

        def kernels_ms(per_thread=None, block=256):
            (fk, V), (bk, _) = L._kernel("forward", T, cp.float32, per_thread), L._kernel("backward", T, cp.float32, per_thread)

            def kernels():
                L._launch(fk, V, N, (x, o), scal_f, block)
                L._launch(bk, V, N, (x, g, gx), scal_b, block)
            return gpu_ms(cp, kernels, 50), V
        kern_ms, V = kernels_ms()
        floor_ms = 5 * T * N * 4 / bw * 1e3
        row = dict(T=T, N=N, per_thread=V, floor_ms=floor_ms, kernels_ms=kern_ms, api_ms=api_ms,
                   kernels_share=floor_ms / kern_ms, api_share=floor_ms / api_ms)
        if variants:
            widths = (1, 2, 4, 8) if T <= 4 else (1,)   # wider threads at T >= 8 spill registers
            row["variants"] = [dict(per_thread=v, block=blk, kernels_ms=kernels_ms(v, blk)[0])
                               for v in widths for blk in (128, 256)]
            for d in row["variants"]:
                d["share"] = floor_ms / d["kernels_ms"]
        row["torch_ms"] = _torch_lif(T, N)
        rows.append(row)
        print(f"LIF T={T:2d} N=2^22: floor {floor_ms:.3f} ms | kernels (V={V}) {kern_ms:.3f} ms "
              f"({100 * row['kernels_share']:.0f}% of floor) | API {api_ms:.3f} ms ({100 * row['api_share']:.0f}%) "
              f"| PyTorch eager {row['torch_ms'] or float('nan'):.3f} ms", flush=True)
        for d in row.get("variants", ()):
            print(f"    V={d['per_thread']} block={d['block']:3d}: {d['kernels_ms']:.4f} ms "
                  f"({100 * d['share']:.1f}% of floor)", flush=True)
    return dict(copy_bandwidth_TBs=bw / 1e12, rows=rows)


def _torch_lif(T, N):
    try:
        import torch
    except ImportError:
        return None

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0.4).float()

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * ((u - 0.4).abs() < 0.5).float() / 1.0

    x = (torch.randn(T, N, device="cuda") * 0.5 + 0.3).requires_grad_()
    g = torch.randn(T, N, device="cuda")

    def step():
        u = torch.zeros(N, device="cuda")
        o = torch.zeros(N, device="cuda")
        outs = []
        for t in range(T):
            u = 0.25 * u * (1 - o) + x[t]
            o = Spike.apply(u)
            outs.append(o)
        torch.stack(outs).backward(g)
        x.grad = None

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(20):
        step()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / 20


def bench_resnet(batch=64, T=2, reps=10):
    """One training step of snnkit's ResNet-19 on random MNIST-shaped data; time per phase."""
    import cupy as cp
    from snnkit import backend
    from snnkit.nn import Adam
    from snnkit.stbp import CrossEntropy, resnet19
    backend.use("cupy")
    m = resnet19(n_steps=T, in_shape=(28, 28, 1), seed=0)
    opt = Adam(m, 1e-3)
    loss = CrossEntropy()
    r = np.random.default_rng(0)
    x = cp.asarray(r.random((batch, 784), dtype=np.float32))
    y = cp.asarray(r.integers(0, 10, batch))
    phases = {"forward": 0.0, "loss+backward": 0.0, "adam": 0.0}
    ev = [cp.cuda.Event() for _ in range(4)]

    def step(record=False):
        ev[0].record()
        out = m.forward(x)
        ev[1].record()
        _, g = loss(out, y)
        m.backward(g)
        ev[2].record()
        opt.step()
        ev[3].record()
        if record:
            ev[3].synchronize()
            for k, (a, b) in zip(phases, zip(ev[:-1], ev[1:])):
                phases[k] += cp.cuda.get_elapsed_time(a, b) / reps

    for _ in range(3):
        step()
    total = gpu_ms(cp, step, reps, warmup=0)
    for _ in range(reps):
        step(record=True)
    mem = cp.get_default_memory_pool().total_bytes() / 2 ** 30
    return dict(step_ms=total, phases_ms=phases, pool_GiB=mem, tf32=os.environ.get("CUPY_TF32", "0") != "0",
                params=m.n_params())


def bench_torch_resnet(batch=64, T=2, reps=10):
    try:
        import torch
        import torch.nn as tnn
    except ImportError:
        return None
    from snnkit.stbp import STBP
    vth, tau, aa = STBP.v_th, STBP.decay, STBP.half_width     # the same neuron as snnkit.stbp

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= vth).float()

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * ((u - vth).abs() < aa).float() / (2 * aa)

    class LIFt(tnn.Module):
        def forward(self, x):                                  # x [T*B, ...]
            xs = x.view(T, -1, *x.shape[1:])
            u = torch.zeros_like(xs[0])
            o = torch.zeros_like(xs[0])
            outs = []
            for t in range(T):
                u = tau * u * (1 - o) + xs[t]
                o = Spike.apply(u)
                outs.append(o)
            return torch.stack(outs).flatten(0, 1)

    def tdbn(c, alpha):
        bn = tnn.BatchNorm2d(c)
        tnn.init.constant_(bn.weight, alpha * vth)
        return bn

    class Block(tnn.Module):
        def __init__(self, ci, co, s):
            super().__init__()
            self.main = tnn.Sequential(tnn.Conv2d(ci, co, 3, s, 1, bias=False), tdbn(co, 1.0), LIFt(),
                                       tnn.Conv2d(co, co, 3, 1, 1, bias=False), tdbn(co, 2 ** -0.5))
            self.sc = (tnn.Sequential(tnn.Conv2d(ci, co, 1, s, bias=False), tdbn(co, 2 ** -0.5))
                       if s != 1 or ci != co else tnn.Identity())
            self.lif = LIFt()

        def forward(self, x):
            return self.lif(self.main(x) + self.sc(x))

    layers = [tnn.Conv2d(1, 128, 3, 1, 1, bias=False), tdbn(128, 1.0), LIFt()]
    c = 128
    for stage, n in enumerate((3, 3, 2)):
        for i in range(n):
            co = 128 * 2 ** stage
            layers.append(Block(c, co, 2 if stage and i == 0 else 1))
            c = co
    net = tnn.Sequential(*layers).cuda()
    head = tnn.Sequential(tnn.Linear(512, 256)).cuda()
    head_lif, out = LIFt(), tnn.Linear(256, 10).cuda()
    params = list(net.parameters()) + list(head.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, 1e-3)
    x = torch.rand(batch, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        h = net(x.unsqueeze(0).expand(T, -1, -1, -1, -1).flatten(0, 1))
        h = head_lif(head(h.mean(dim=(2, 3))))
        logits = out(h).view(T, batch, 10).mean(0)
        loss = tnn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        step()
    b.record()
    torch.cuda.synchronize()
    return dict(step_ms=a.elapsed_time(b) / reps, cudnn_tf32=torch.backends.cudnn.allow_tf32,
                matmul_tf32=torch.backends.cuda.matmul.allow_tf32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lif", action="store_true")
    ap.add_argument("--lif-variants", action="store_true",
                    help="with --lif: also time every neurons-per-thread / block-size variant of the kernels")
    ap.add_argument("--resnet", action="store_true")
    ap.add_argument("--resnet-only-here", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.resnet_only_here:                         # child process: CUPY_TF32 fixed before import
        print("RESULT " + json.dumps(bench_resnet()), flush=True)
        return
    both = not (a.lif or a.resnet)
    res = {}
    import cupy as cp
    props = cp.cuda.runtime.getDeviceProperties(0)
    res["device"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res["cupy"] = cp.__version__
    if a.lif or both:
        res["lif"] = bench_lif(variants=a.lif_variants)
    if a.resnet or both:
        res["resnet"] = {}
        for tf32 in ("0", "1"):
            env = dict(os.environ, CUPY_TF32=tf32)
            p = subprocess.run([sys.executable, __file__, "--resnet-only-here"], env=env, capture_output=True,
                               text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                print(p.stdout[-3000:], p.stderr[-3000:])
                continue
            r = json.loads(line[0][7:])
            res["resnet"]["tf32" if tf32 == "1" else "fp32"] = r
            print(f"ResNet-19 step (B=64, T=2, {'TF32' if tf32 == '1' else 'FP32'} GEMMs): {r['step_ms']:.1f} ms "
                  f"= " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases_ms"].items())
                  + f"; pool {r['pool_GiB']:.1f} GiB", flush=True)
        t = bench_torch_resnet()
        res["resnet"]["torch"] = t
        if t:
            print(f"PyTorch + cuDNN ResNet-19 step: {t['step_ms']:.1f} ms (cudnn tf32 {t['cudnn_tf32']}, "
                  f"matmul tf32 {t['matmul_tf32']})", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
