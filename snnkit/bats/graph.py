"""A whole BATS training step (forward, loss, backward, Adam) recorded once as a CUDA graph and
replayed with one launch per step.

    step = GraphStep(net, loss, opt)     # Network of LIFDense layers, SpikeCountLoss, Adam, on CuPy
    value = step(spikes, labels)         # the loss as a 0-d device array: float(value) waits for the GPU

Why: at the batch sizes people train BATS with (50-200) a step is ~25 kernels of a few
microseconds each; issuing them from Python takes longer than running them, so the GPU idles
between launches (the eager step of ``benchmarks/bench_bats.py`` is ~2 ms at batch 50 for well
under a millisecond of kernels). A replay issues all of them from one call.

What a replay needs, and how it is kept true:

* **No host sync inside.** The eager forward sorts each layer's input spikes with CuPy's argsort
  (thrust), which allocates and synchronizes; the step here sorts with
  ``kernels/bats_graph.cu`` (one block per sample, finite spikes only; the same order, ties
  included, and bit-identical event values: :func:`sort_events_capturable`). Labels are range-
  checked before the upload, on the host for NumPy labels.
* **Fixed addresses.** The batch is copied into a static input buffer and the labels into a
  static int64 buffer before each replay; everything the captured step allocates (events, spike
  trains, gradients, temporaries) comes from the graph's :class:`snnkit.capture.Workspace`, which keeps it for the
  graph's life. So after a call, each layer's ``last`` (its ``Simulation``) is a view of that
  workspace, overwritten by the next call: copy what you keep. The weight gradient is also copied
  into ``layer.grads["weight"]`` in place inside the graph (the layer protocol: whoever holds that
  array sees every step's gradient; its address is part of the graph's key).
* **Per-step scalars in device memory.** Adam's bias-corrected step and epsilon change every
  step (and ``opt.lr`` may follow a schedule): they are written into a 4-element device array
  before each replay and read there by the update kernel, which computes exactly the
  eager ``snnkit.nn.Adam`` update (same expression, same float type).
* **One graph per key**: batch shape, dtype, every layer's settings and the addresses of every
  weight and optimizer slot. A new key (a new batch size, a weight array replaced by
  ``load_state_dict``) runs its first step eagerly through the same code (kernels compiled,
  optimizer state created; nothing is compiled inside a capture), and is captured on its second.

Unlike the Trainer's device path, nothing checks the gradients for NaN before the update (the
update is inside the graph); a caller that needs that check reads ``layer.grads`` after the call and
before the next one, or uses the Trainer. Speed on an H200 (benchmarks/RESULTS.md, BATS round 2):
0.78 ms per step at batch 50 and 1.57 ms at 200 against 1.97 and 2.70 ms eager, 9.3x and 10.0x
the public BATS code in the same process.

The captured step computes the same numbers as the uncaptured step (``net.forward``,
``loss.value_and_grad``, ``net.backward``, ``opt.step``): same kernels in the same order, an event
list in the same order; ``tests/test_bats_graph_gpu.py`` checks bit-identical losses and weights
over training steps.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import checks
from ..backend import is_cupy_array
from ..capture import capture
from ..nn.optim import Adam
from ..spikes import SpikeTrains
from .backward import backward as _backward
from .layers import LIFDense, _is_checked
from .losses import SpikeCountLoss
from .neuron import KERNEL_DEFINES, check_exp_range, check_times, grid_up, on_grid
from .simulate import Simulation, _simulate_cuda, cuda_outputs

__all__ = ["GraphStep", "sort_events_capturable", "simulate_staged", "SORT_CAP"]

SORT_CAP = 4000          # spikes per sample sorted in shared memory (12 bytes each, of 48 KiB); more: global scratch
_SORT_THREADS = 1024
_W_STAGE_BYTES = 32768   # a forward tile's weights staged in shared memory up to this size
_STAGED_BELOW = 128      # GraphStep's default: the staged forward for layers of fewer neurons than this
FWD_WARPS = 4            # bats_forward_staged: neurons per block, one warp each (4 x 32 threads)
_DEFINES = {**KERNEL_DEFINES, "BATS_SORT_CAP": SORT_CAP, "BATS_FWD_WARPS": FWD_WARPS}


def _kernel(name, dtype):
    """The kernel ``name`` of ``kernels/bats_graph.cu`` for ``dtype`` (SORT_CAP and the constants of
    bats_forward.cu, which it includes, given as -D: Python and CUDA cannot disagree on them)."""
    from ..kernels import function
    return function("bats_graph.cu", name, dtype, _DEFINES)


def sort_events_capturable(in_times, tau_s):
    """Event list of ``in_times`` [B, N_in, S_in] (CuPy) without a host sync or an allocation by
    a library (it can be recorded into a CUDA graph).

    Returns ``ev_t, ev_i, ev_a, ev_b`` [B, N_in * S_in] as :func:`snnkit.bats.sort_events` does,
    except after the ``n_b`` finite spikes of sample b: slot ``n_b`` holds the +inf sentinel
    (a = b = 0) and later slots are left unwritten (``bats_forward`` stops at the first +inf)."""
    import cupy as cp
    if not is_cupy_array(in_times) or in_times.ndim != 3:
        raise TypeError("sort_events_capturable takes a CuPy array [batch, n_in, slots]; for NumPy use "
                        "snnkit.bats.sort_events")
    B, n_in, s_in = in_times.shape
    NS = n_in * s_in
    dtype = in_times.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"in_times must be float32 or float64; got {dtype}")
    f = np.dtype(dtype).type
    flat = cp.ascontiguousarray(in_times).reshape(B, NS)
    ev_t, ev_a, ev_b = (cp.empty((B, NS), dtype) for _ in range(3))
    ev_i = cp.empty((B, NS), cp.int32)
    # scratch for samples with more than SORT_CAP spikes (only when a sample can have that many)
    shape = (B, NS) if NS > SORT_CAP else (1,)
    g_key, g_idx = cp.empty(shape, cp.uint64), cp.empty(shape, cp.uint32)
    kern = _kernel("bats_sort_events_block", dtype)
    kern((B,), (_SORT_THREADS,), (flat, np.int32(NS), np.int32(s_in), f(tau_s), g_key, g_idx,
                                  ev_t, ev_i, ev_a, ev_b))
    return ev_t, ev_i, ev_a, ev_b


def simulate_staged(weight, ev_t, ev_i, ev_a, ev_b, tau_s, theta, delta_theta, S, t_max, dt):
    """``simulate``'s CUDA launch (``_simulate_cuda``: same arguments, same outputs, the same bits)
    through ``bats_forward_staged`` (kernels/bats_graph.cu): one warp per (sample, neuron), its 32
    lanes testing 32 events side by side, FWD_WARPS neurons of one sample per block with the event
    list staged in shared memory, for layers with few neurons."""
    import cupy as cp
    B, K = ev_t.shape
    N, N_in = weight.shape
    dtype = weight.dtype
    f = np.dtype(dtype).type
    wT = cp.ascontiguousarray(weight.T)
    times, t_cont, x_out, counts, overflow = cuda_outputs(B, N, S, dtype, dt)
    w_bytes = N_in * min(FWD_WARPS, N) * dtype.itemsize
    stage_w = w_bytes <= _W_STAGE_BYTES
    tau = 2.0 * tau_s
    _kernel("bats_forward_staged", dtype)(
        (B, -(-N // FWD_WARPS)), (32 * FWD_WARPS,),
        (ev_t, ev_i, ev_a, ev_b, wT, np.int32(N), np.int32(K), np.int32(S), np.int32(N_in), np.int32(stage_w),
         f(tau), f(theta / tau), f(delta_theta / tau), f(t_max), f(dt or 0.0), times, t_cont, x_out, counts,
         overflow), shared_mem=w_bytes if stage_w else 0)
    return times, t_cont, x_out, counts, overflow


_ADAM_DEV = None


def _adam_device_scalars():
    """``Adam._update``'s kernel with (b1, b2, step, eps_hat) read from a device array, so that a
    replay uses this step's values. The update expression is the eager kernel's, character for
    character (snnkit/nn/optim.py), so both round alike."""
    global _ADAM_DEV
    if _ADAM_DEV is None:
        import cupy as cp
        _ADAM_DEV = cp.ElementwiseKernel(
            "T g, raw T sc", "T p, T m, T v",
            """
            const T b1 = sc[0], b2 = sc[1], step = sc[2], eps_hat = sc[3];
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * (g * g);
            p -= step * m / (sqrt(v) + eps_hat);
            """,
            "snnkit_adam_update_graph")
    return _ADAM_DEV


class _StepBuffers:
    """The static inputs of one graph: the batch's times ``x``, the labels ``y`` (int64) and Adam's
    scalars ``sc`` (b1, b2, step, eps_hat in the weights' dtype). ``y`` and ``sc`` share one device
    block, filled by one asynchronous copy from a pinned host block (two pageable uploads cost more
    host time than the rest of a step's Python)."""

    def __init__(self, shape, dtype):
        import cupy as cp
        B = int(shape[0])
        dtype = np.dtype(dtype)
        self.nbytes = 8 * B + 4 * dtype.itemsize
        self.x = cp.empty(shape, dtype)
        self.dev = cp.empty(self.nbytes, cp.uint8)
        self.y = self.dev[:8 * B].view(cp.int64)
        self.sc = self.dev[8 * B:].view(dtype)
        self._pinned = cp.cuda.alloc_pinned_memory(self.nbytes)
        self.host = np.frombuffer(self._pinned, np.uint8, self.nbytes)
        self.host_y = self.host[:8 * B].view(np.int64)
        self.host_sc = self.host[8 * B:].view(dtype)
        self.copied = None                       # event after the last upload

    @property
    def args(self):
        return self.x, self.y, self.sc

    def upload(self, labels, scalars):
        import cupy as cp
        if self.copied is not None:
            self.copied.synchronize()            # the pinned block is free again (normally long done)
        if is_cupy_array(labels):
            self.host_sc[:] = scalars
            self.y[...] = labels
            self.sc.set(self.host_sc)
            return
        self.host_y[:] = labels
        self.host_sc[:] = scalars
        stream = cp.cuda.get_current_stream()
        cp.cuda.runtime.memcpyAsync(self.dev.data.ptr, self.host.ctypes.data, self.nbytes,
                                    cp.cuda.runtime.memcpyHostToDevice, stream.ptr)
        self.copied = stream.record()


class _Captured:
    def __init__(self, graph, workspace, state):
        self.graph, self.workspace, self.state = graph, workspace, state


class GraphStep:
    """``step(spikes, labels) -> loss`` (0-d device array): one training step of ``net`` replayed
    as a CUDA graph (see the module docstring for what that assumes).

    ``net``: a :class:`~snnkit.bats.Network` (or any object with ``layers``) of ``LIFDense``
    layers with CuPy weights; ``loss``: :class:`~snnkit.bats.SpikeCountLoss`; ``opt``:
    :class:`~snnkit.nn.Adam` over the same layers. ``spikes``: SpikeTrains or a times array
    [B, n_in, S_in] on the GPU; ``labels`` [B] class indices (NumPy labels are checked on the host).
    ``graphs`` > 0 keeps that many captured steps (one per batch shape); ``graphs = 0`` runs every
    step eagerly through the same code (no capture), for comparisons. ``staged_forward``: which
    layers' forward runs ``bats_forward_staged`` (same results, see :func:`simulate_staged`): None =
    layers of fewer than 128 neurons, True = all, False = none."""

    def __init__(self, net, loss, opt, graphs=2, staged_forward=None):
        layers = list(getattr(net, "layers", ()))
        if not layers or not all(type(l) is LIFDense for l in layers):
            raise TypeError("GraphStep runs networks of LIFDense layers only (got "
                            f"{[type(l).__name__ for l in layers]}); train other networks with the Trainer's "
                            "eager step")
        if not isinstance(loss, SpikeCountLoss):
            raise TypeError(f"GraphStep supports SpikeCountLoss (got {type(loss).__name__}); use the eager step "
                            "(net.forward, loss.value_and_grad, net.backward, opt.step) for other losses")
        if type(opt) is not Adam:
            raise TypeError(f"GraphStep supports snnkit.nn.Adam (got {type(opt).__name__})")
        if [id(l) for l in opt.layers] != [id(l) for l in layers]:
            raise ValueError("opt must update the layers of net: build it as Adam(net, lr=...)")
        for i, l in enumerate(layers):
            w = l.params["weight"]
            if not is_cupy_array(w):
                raise TypeError(f"layer {i}'s weight is a {type(w).__module__} array: GraphStep needs the "
                                "CuPy backend (snnkit.backend.use('cupy') before building the network)")
            if w.dtype != layers[0].params["weight"].dtype:
                raise TypeError("every layer's weight must have the same dtype")
        self.net, self.layers, self.loss, self.opt = net, layers, loss, opt
        self.max_graphs = checks.integer("graphs", graphs, 0)
        if staged_forward not in (None, True, False):
            raise TypeError(f"staged_forward must be None, True or False; got {staged_forward!r}")
        self.staged = [l.n_out < _STAGED_BELOW if staged_forward is None else staged_forward for l in layers]
        self.graphs: OrderedDict = OrderedDict()
        self.seen: set = set()
        self.captures = self.replays = self.eager = 0
        self._buffers: dict = {}
        self.stream = None

    # -- what a replay depends on ---------------------------------------------------------------
    def _slots(self):
        """Adam's m and v of each layer's weight, created as Adam._update would create them."""
        out = []
        for i, l in enumerate(self.layers):
            p = l.params["weight"]
            if (i, "weight", "m") not in self.opt.state:
                import cupy as cp
                self.opt.state[(i, "weight", "m")] = cp.zeros_like(p)
                self.opt.state[(i, "weight", "v")] = cp.zeros_like(p)
            out.append((self.opt.state[(i, "weight", "m")], self.opt.state[(i, "weight", "v")]))
        return out

    def _key(self, shape, dtype):
        arrays = []
        for l, (m, v) in zip(self.layers, self._slots()):
            p = l.params["weight"]
            gw = l.grads["weight"]
            arrays += [(p.data.ptr, p.shape, p.dtype), (m.data.ptr, m.shape), (v.data.ptr, v.shape),
                       (gw.data.ptr, gw.shape, gw.dtype)]
        settings = tuple((l.tau_s, l.theta, l.delta_theta, l.max_spikes, l.t_max, l.dt, l.n_in, l.n_out)
                         for l in self.layers)
        return (tuple(shape), str(dtype), tuple(arrays), settings,
                (self.loss.target_true, self.loss.target_false))

    def _check_contiguous(self):
        for l, (m, v) in zip(self.layers, self._slots()):
            if not all(a.flags.c_contiguous for a in (l.params["weight"], l.grads["weight"], m, v)):
                raise ValueError("GraphStep needs C-contiguous weights, gradients and optimizer state (the step "
                                 "writes them in place): use cupy.ascontiguousarray before assigning them")

    # -- the step -------------------------------------------------------------------------------
    def __call__(self, spikes, labels):
        import cupy as cp
        first = self.layers[0]
        w0 = first.params["weight"]
        times = spikes.times if isinstance(spikes, SpikeTrains) else spikes
        if not is_cupy_array(times):
            raise TypeError("GraphStep: the input spikes must be on the GPU (a CuPy array; upload the data set "
                            "once, e.g. with the Trainer's device path or cupy.asarray)")
        t = check_times(times, first.n_in, "input spikes", values=False)
        if not (isinstance(spikes, SpikeTrains) and _is_checked(spikes)):
            # as the eager layer does for trains no BATS layer made (one device sync)
            check_times(t, first.n_in, "input spikes")
            check_exp_range(t, first.tau_s, w0.dtype, "input spikes", t_max=first.t_max)
        B = int(t.shape[0])
        y = checks.labels(labels, B, self.layers[-1].n_out)
        key = self._key(t.shape, w0.dtype)
        bufs = self._buffers.get(key)
        if bufs is None:
            self._check_contiguous()
            if len(self._buffers) >= 4 * max(self.max_graphs, 1):
                self._buffers.clear()
            bufs = self._buffers[key] = _StepBuffers(t.shape, w0.dtype)
        # the batch into the static input (a device copy), then labels and Adam's scalars in one
        # upload from pinned memory
        if t.flags.c_contiguous and t.dtype == w0.dtype:
            bufs.x.data.copy_from_device_async(t.data, t.nbytes)
        else:
            bufs.x[...] = t
        opt = self.opt
        opt.t += 1                                    # as Optimizer.step, then Adam._update's scalars
        bc1, bc2 = 1 - opt.b1 ** opt.t, np.sqrt(1 - opt.b2 ** opt.t)
        step, eps_hat = opt.lr * bc2 / bc1, opt.eps * bc2
        bufs.upload(y, (opt.b1, opt.b2, step, eps_hat))
        g = self.graphs.get(key) if self.max_graphs else None
        if g is None and self.max_graphs and key in self.seen:
            g = self._capture(bufs.args)
            self.graphs[key] = g
            while len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        if g is not None:
            self.graphs.move_to_end(key)
            g.graph.launch(stream=cp.cuda.get_current_stream())
            self.replays += 1
            state = g.state
        else:
            self.seen.add(key)
            state = self._queue(*bufs.args)
            self.eager += 1
        value, sims, dws = state
        for l, sim in zip(self.layers, sims):
            l.last = sim
        return value

    def _queue(self, x, y, sc):
        """Queue one step on the current stream; returns (loss, simulations, weight gradients)."""
        sims, h, grid = [], x, None          # x: data times, on no grid yet
        for l, staged in zip(self.layers, self.staged):
            sim = self._forward(l, h, staged, on_grid=on_grid(grid, l.dt))
            sims.append(sim)
            h, grid = sim.times, l.dt        # as bats.LIFDense: the next layer on this grid takes them as they are
        last = sims[-1]
        value, g = self.loss._cuda(SpikeTrains(last.times, last.counts, last.overflow), y, int(x.shape[0]))
        dws = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            l = self.layers[i]
            # the first layer's input times are data: no input gradient (as bats.Network.backward)
            dws[i], g = _backward(l.params["weight"], sims[i], g, l.tau_s, l.theta, l.delta_theta,
                                  need_input_grad=i > 0)
            l.grads["weight"][...] = dws[i]
        kern = _adam_device_scalars()
        for l, dw, (m, v) in zip(self.layers, dws, self._slots()):
            kern(dw, sc, l.params["weight"], m, v)
        return value, sims, dws

    @staticmethod
    def _forward(layer, times, staged, on_grid=False):
        """``simulate`` of one layer, with the capturable event sort (the same numbers)."""
        w = layer.params["weight"]
        used = grid_up(times, layer.dt) if layer.dt is not None and not on_grid else times
        ev_t, ev_i, ev_a, ev_b = sort_events_capturable(used, layer.tau_s)
        out = (simulate_staged if staged else _simulate_cuda)(w, ev_t, ev_i, ev_a, ev_b, layer.tau_s, layer.theta, layer.delta_theta,
                             layer.max_spikes, layer.t_max, layer.dt)
        times_o, t_cont, x, counts, overflow = out
        return Simulation(times_o, counts, overflow, t_cont, x, used)

    def _capture(self, bufs) -> _Captured:
        import cupy as cp
        if self.stream is None:
            self.stream = cp.cuda.Stream(non_blocking=True)
        # the static buffers were written on the current stream: the capture stream must not
        # overtake them when the graph is launched there (it is launched on the current stream)
        graph, ws, state = capture(self.stream, lambda: self._queue(*bufs))
        self.captures += 1
        return _Captured(graph, ws, state)

    @property
    def workspace_bytes(self) -> int:
        """Device memory held by the captured steps' workspaces."""
        return sum(g.workspace.nbytes for g in self.graphs.values())

    def __repr__(self):
        return (f"GraphStep({len(self.layers)} layers, {len(self.graphs)} graphs, captures {self.captures}, "
                f"replays {self.replays}, eager {self.eager})")

