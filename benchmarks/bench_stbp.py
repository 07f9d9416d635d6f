"""STBP + tdBN benchmarks (GPU): the fused multi-step LIF against the memory-bandwidth floor, and one
ResNet-19 training step (MNIST 28x28, T = 2, batch 64, Adam) -- each beside PyTorch on the same GPU.

    python benchmarks/bench_stbp.py [--lif [--lif-variants]] [--resnet] [--json out.json]
    python benchmarks/bench_stbp.py --levers --json levers.json      # issue 17, see bench_levers

LIF: forward + backward of 2^22 neurons for T in {2, 4, 8, 32}. The floor is 5 passes of T*N float32
(read x, write o; read x, read dL/do, write dL/dx) at the measured device-to-device copy bandwidth.
Reported: the pure functions lif_forward + lif_backward (Python dispatch included) and the two
kernels launched back to back (device time), vs a PyTorch eager time loop with autograd and
SpikingJelly 2.0's multi-step LIF (where installed; tools/gpu_carry.sh carries its wheel).

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
        row["spikingjelly_ms"], row["spikingjelly"] = _spikingjelly_lif(T, N)
        if row["spikingjelly_ms"]:
            row["spikingjelly_share"] = floor_ms / row["spikingjelly_ms"]
        rows.append(row)
        print(f"LIF T={T:2d} N=2^22: floor {floor_ms:.3f} ms | kernels (V={V}) {kern_ms:.3f} ms "
              f"({100 * row['kernels_share']:.0f}% of floor) | API {api_ms:.3f} ms ({100 * row['api_share']:.0f}%) "
              f"| PyTorch eager {row['torch_ms'] or float('nan'):.3f} ms | SpikingJelly "
              + (f"{row['spikingjelly_ms']:.3f} ms ({100 * row['spikingjelly_share']:.0f}% of floor)"
                 if row["spikingjelly_ms"] else f"not run ({row['spikingjelly']})"), flush=True)
        for d in row.get("variants", ()):
            print(f"    V={d['per_thread']} block={d['block']:3d}: {d['kernels_ms']:.4f} ms "
                  f"({100 * d['share']:.1f}% of floor)", flush=True)
    return dict(copy_bandwidth_TBs=bw / 1e12, rows=rows)


def _cuda_events_ms(torch, step, reps=20, warmup=3):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        step()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


def _spikingjelly_lif(T, N):
    """SpikingJelly 2.0's multi-step LIF (``functional.lif_multi_step``: its own CUDA/Triton kernels,
    picked by the library) on the same neuron: decay_input=False and tau = 4/3 give
    H = V (1 - 1/tau) + X = 0.25 V + X, hard reset to 0, threshold 0.4; its default sigmoid surrogate
    (the surrogate's shape does not change the memory traffic). Returns (ms, version) or (None, why)."""
    try:
        import torch
        import importlib.metadata as md
        from spikingjelly.activation_based import functional as sjf, surrogate
    except Exception as e:                      # not installed on this machine: say so, do not fail
        return None, f"spikingjelly not importable: {type(e).__name__}: {e}"
    x = (torch.randn(T, N, device="cuda") * 0.5 + 0.3).requires_grad_()
    g = torch.randn(T, N, device="cuda")
    v0 = torch.zeros(N, device="cuda")
    sg = surrogate.Sigmoid()

    def step():
        s, _, _ = sjf.lif_multi_step(x, v0, tau=4.0 / 3.0, decay_input=False, v_threshold=0.4, v_reset=0.0,
                                     surrogate_function=sg)
        s.backward(g)
        x.grad = None
    try:
        return _cuda_events_ms(torch, step), "spikingjelly " + md.version("spikingjelly")
    except Exception as e:
        return None, f"spikingjelly failed: {type(e).__name__}: {e}"


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

    return _cuda_events_ms(torch, step)


def resnet_setup(batch, T):
    """(model, Adam, loss, x, y): the published ResNet-19 on CuPy and one random MNIST-shaped batch,
    the same for every ResNet benchmark of this script."""
    import cupy as cp
    from snnkit import backend
    from snnkit.nn import Adam
    from snnkit.stbp import CrossEntropy, resnet19
    backend.use("cupy")
    m = resnet19(n_steps=T, in_shape=(28, 28, 1), seed=0)
    r = np.random.default_rng(0)
    x = cp.asarray(r.random((batch, 784), dtype=np.float32))
    y = cp.asarray(r.integers(0, 10, batch))
    return m, Adam(m, 1e-3), CrossEntropy(), x, y


def bench_resnet(batch=64, T=2, reps=10):
    """One training step of snnkit's ResNet-19 on random MNIST-shaped data; time per phase."""
    import cupy as cp
    m, opt, loss, x, y = resnet_setup(batch, T)
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


def bench_torch_resnet(batch=64, T=2, reps=10, mode=None, tf32_matmul=None):
    """PyTorch's step of the same network: eager (``mode=None``) or through ``torch.compile(mode=...)``
    ("default", "reduce-overhead"); ``tf32_matmul`` True/False sets torch.backends.cuda.matmul.allow_tf32
    (None: PyTorch's default), and then cuDNN TF32 and cudnn.benchmark are on as well."""
    try:
        import torch
        import torch.nn as tnn
    except ImportError:
        return None
    if tf32_matmul is not None:
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32_matmul)
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
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

    def forward_loss(x, y):
        h = net(x.unsqueeze(0).expand(T, -1, -1, -1, -1).flatten(0, 1))
        h = head_lif(head(h.mean(dim=(2, 3))))
        logits = out(h).view(T, batch, 10).mean(0)
        return tnn.functional.cross_entropy(logits, y)

    fl = forward_loss if mode is None else torch.compile(forward_loss, mode=mode)
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def step():
        if mode == "reduce-overhead" and mark is not None:
            mark()
        loss = fl(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3 if mode is None else 5):
        step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    return dict(step_ms=_cuda_events_ms(torch, step, reps, warmup=0), cudnn_tf32=torch.backends.cudnn.allow_tf32,
                matmul_tf32=torch.backends.cuda.matmul.allow_tf32, mode=mode or "eager",
                cudnn_benchmark=torch.backends.cudnn.benchmark, warmup_s=warm_s, torch=torch.__version__)


# ---- issue 17: where the ResNet-19 step's time goes, and the levers one by one ----------------------
KERNEL_CATEGORIES = (          # (category, substrings of the kernel name, lower case), first match wins
    ("fused tdBN+LIF", ("norm_lif",)),
    ("im2col", ("im2col",)),
    ("col2im", ("col2im",)),
    ("GEMM (cuBLAS)", ("gemm", "gemv", "xmma", "cutlass", "splitk", "cublas", "nvjet")),
    ("LIF", ("lif_forward", "lif_backward")),
    ("tdBN statistics", ("tdbn_partial_sums", "tdbn_reduce_chunks", "tdbn_fold")),
    ("tdBN apply", ("tdbn_affine",)),
    ("tdBN backward", ("tdbn_partial_grad_sums", "tdbn_backward_dx")),
    ("Adam", ("adam",)),
)


def _category(name):
    low = name.lower()
    for cat, keys in KERNEL_CATEGORIES:
        if any(k in low for k in keys):
            return cat
    return "other (CuPy element-wise/reductions: residual adds, pooling, loss, copies)"


def kernel_breakdown(fn, steps, trace_path=None):
    """Device time per kernel category per step of ``fn`` (CUPTI through torch.profiler, which records
    every kernel of the process, CuPy's included): {category: (ms, kernels)}, the summed kernel time,
    and the top kernels by time."""
    import cupy as cp
    from torch.profiler import ProfilerActivity, profile
    cp.cuda.Device().synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        cp.cuda.Device().synchronize()
    path = trace_path or "/tmp/stbp_trace.json"
    prof.export_chrome_trace(path)
    with open(path) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    cats, names = {}, {}
    for e in events:
        if e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset") or "dur" not in e:
            continue
        name = e.get("name", "?") if e.get("cat") == "kernel" else e["cat"]
        cat = _category(name) if e.get("cat") == "kernel" else "memcpy/memset"
        ms, n = cats.get(cat, (0.0, 0))
        cats[cat] = (ms + e["dur"] / 1e3 / steps, n + 1 / steps)
        ms, n = names.get(name, (0.0, 0))
        names[name] = (ms + e["dur"] / 1e3 / steps, n + 1 / steps)
    top = sorted(names.items(), key=lambda kv: -kv[1][0])[:25]
    return dict(categories=dict(sorted(cats.items(), key=lambda kv: -kv[1][0])),
                kernel_ms=sum(v[0] for v in cats.values()), kernels=sum(v[1] for v in cats.values()),
                top=[(k[:120], v) for k, v in top])


def cudnn_probe():
    """Whether the installed CuPy still exposes cuDNN (CuPy 14 dropped it, per its release notes)."""
    import importlib
    out = {}
    for mod in ("cupy.cuda.cudnn", "cupyx.cudnn", "cupy.cudnn"):
        try:
            importlib.import_module(mod)
            out[mod] = "importable"
        except Exception as e:                       # noqa: BLE001  (the message is the finding)
            out[mod] = f"{type(e).__name__}: {e}"[:160]
    return out


def bench_levers(batch=64, T=2, reps=20, out_dir=None):
    """One process (CUPY_TF32 as the parent set it): the eager step's kernel breakdown, then each lever
    of issue 17 on the same model, one after the other, each timed as CUDA events around ``reps``
    back-to-back steps after warm-ups (the GPU's time per step, idle gaps while Python launches
    included)."""
    import cupy as cp
    from snnkit.stbp import conv as conv_mod
    res = dict(cudnn=cudnn_probe(), tf32=os.environ.get("CUPY_TF32", "0") != "0", batch=batch, T=T, reps=reps)
    print("cuDNN in CuPy:", res["cudnn"], flush=True)
    m, opt, loss, x, y = resnet_setup(batch, T)

    def read_step():                                 # bench_resnet's step: the loss read every step
        out = m.forward(x)
        _, g = loss(out, y)
        m.backward(g)
        opt.step()

    def step():                                      # the loss stays on the device, as PyTorch's step
        out = m.forward(x)
        _, g = loss.value_and_grad(out, y)
        m.backward(g)
        opt.step()

    # (name, fused tdBN+LIF, vector im2col/col2im, step)
    variants = [
        ("eager, loss read each step (as --resnet)", False, False, read_step),
        ("baseline: loss on the device", False, False, step),
        ("+ fused tdBN+LIF", True, False, step),
        ("+ vector im2col/col2im", False, True, step),
        ("+ fused tdBN+LIF + vector im2col/col2im", True, True, step),
    ]
    res["variants"] = {}
    pool = cp.get_default_memory_pool()
    for name, fused, vec, fn in variants:
        m.set_fused(fused)
        conv_mod.VECTOR_KERNELS = vec
        try:
            ms = gpu_ms(cp, fn, reps, warmup=3)
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            cp.cuda.Device().synchronize()
            wall = (time.perf_counter() - t0) / reps * 1e3
            row = dict(step_ms=ms, wall_ms=wall, pool_GiB=pool.total_bytes() / 2 ** 30)
            print(f"  {name}: {ms:.2f} ms/step (events), {wall:.2f} ms (wall); pool {row['pool_GiB']:.1f} GiB",
                  flush=True)
        except Exception as e:                       # noqa: BLE001  (report and go on to the next lever)
            import traceback
            traceback.print_exc()
            row = dict(error=f"{type(e).__name__}: {e}"[:300])
            print(f"  {name}: FAILED {row['error']}", flush=True)
        res["variants"][name] = row
    # the breakdowns: the baseline eager step (loss on the device, no per-step read) and the best lever
    try:
        import torch  # noqa: F401  (the profiler)
        for name, fused, vec, fn in (variants[1], variants[4]):
            if "error" in res["variants"][name]:
                continue
            m.set_fused(fused)
            conv_mod.VECTOR_KERNELS = vec
            fn()
            tag = "".join(ch if ch.isalnum() else "_" for ch in name)[:40]
            b = kernel_breakdown(fn, 5, os.path.join(out_dir, f"trace_{tag}.json") if out_dir else None)
            b["step_ms"] = res["variants"][name]["step_ms"]
            res.setdefault("breakdown", {})[name] = b
            print(f"  breakdown of '{name}': kernels {b['kernel_ms']:.2f} ms in {b['kernels']:.0f} launches per step "
                  f"(step {b['step_ms']:.2f} ms: GPU idle {b['step_ms'] - b['kernel_ms']:.2f} ms)", flush=True)
            for cat, (ms, n) in b["categories"].items():
                print(f"      {cat:<40s} {ms:7.3f} ms  {n:5.0f} kernels", flush=True)
            for k, (ms, n) in b["top"][:12]:
                print(f"      top: {ms:7.3f} ms {n:4.0f}x {k}", flush=True)
    except Exception as e:                           # noqa: BLE001
        import traceback
        traceback.print_exc()
        res["breakdown_error"] = f"{type(e).__name__}: {e}"[:300]
    return res


def bench_torch_modes(batch=64, T=2, reps=20):
    """PyTorch eager with TF32 convolutions and matmuls, torch.compile, torch.compile(reduce-overhead)."""
    out = {}
    for mode in (None, "default", "reduce-overhead"):
        try:
            import torch
            torch._dynamo.reset()
            r = bench_torch_resnet(batch, T, reps, mode=mode, tf32_matmul=True)
            print(f"  PyTorch {r['mode']}: {r['step_ms']:.2f} ms/step (warm-up {r['warmup_s']:.0f} s)", flush=True)
        except Exception as e:                       # noqa: BLE001
            import traceback
            traceback.print_exc()
            r = dict(error=f"{type(e).__name__}: {e}"[:300])
        out[mode or "eager"] = r
    return out


def run_child(flag, env, timeout, json_path):
    """This script with ``flag`` in a fresh process (CUPY_TF32 fixed before CuPy is imported); its
    result is the JSON it writes to ``json_path``; its output goes to ours."""
    try:
        subprocess.run([sys.executable, __file__, flag, "--json", json_path], env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{flag}: timed out after {timeout} s", flush=True)
    try:
        with open(json_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lif", action="store_true")
    ap.add_argument("--lif-variants", action="store_true",
                    help="with --lif: also time every neurons-per-thread / block-size variant of the kernels")
    ap.add_argument("--resnet", action="store_true")
    ap.add_argument("--levers", action="store_true",
                    help="issue 17: the ResNet-19 step's kernel breakdown and each lever, beside PyTorch eager, "
                         "torch.compile and torch.compile(reduce-overhead), TF32 everywhere")
    ap.add_argument("--out-dir", help="with --levers: where the profiler traces go")
    ap.add_argument("--resnet-only-here", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--levers-here", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-here", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.resnet_only_here:                         # child process: CUPY_TF32 fixed before import
        print("RESULT " + json.dumps(bench_resnet()), flush=True)
        return
    if a.levers_here or a.torch_here:              # children of --levers
        r = bench_levers(out_dir=a.out_dir) if a.levers_here else bench_torch_modes()
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
        return
    if a.levers:
        import cupy as cp
        props = cp.cuda.runtime.getDeviceProperties(0)
        res = dict(device=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cupy=cp.__version__)
        print(res, flush=True)
        base = a.json or "levers.json"
        ours_env = dict(os.environ, CUPY_TF32="1")
        extra = ["--out-dir", a.out_dir] if a.out_dir else []
        try:
            subprocess.run([sys.executable, __file__, "--levers-here", "--json", base + ".ours", *extra],
                           env=ours_env, timeout=float(os.environ.get("LEVERS_TIMEOUT", 240)))
        except subprocess.TimeoutExpired:
            print("--levers-here: timed out", flush=True)
        try:
            with open(base + ".ours") as f:
                res["ours"] = json.load(f)
        except (OSError, ValueError):
            res["ours"] = None
        res["torch"] = run_child("--torch-here", dict(os.environ), float(os.environ.get("TORCH_TIMEOUT", 300)),
                                 base + ".torch")
        best = [v["step_ms"] for v in (res["ours"] or {}).get("variants", {}).values() if "step_ms" in v]
        tc = ((res["torch"] or {}).get("default") or {}).get("step_ms")
        if best and tc:
            print(f"best snnkit step {min(best):.2f} ms = {min(best) / tc:.2f}x torch.compile ({tc:.2f} ms); "
                  f"target <= 0.77x", flush=True)
        with open(base, "w") as f:
            json.dump(res, f, indent=1)
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
