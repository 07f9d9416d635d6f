"""Launchers for the S3GD CUDA kernels (``kernels/s3gd_*.cu``); each mirrors a NumPy twin.

Every function here takes and returns CuPy arrays and is only called by the twins' dispatchers
when their inputs live on the GPU. Scalars are passed with explicit NumPy types; the float type is
chosen at compile time (``-DREAL=float|double``), so float32 and float64 each have their module.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..kernels import get_function, launch_1d

_REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_FUNCTIONS: dict = {}


def _fn(filename, name, dtype, extra=()):
    # cached per (file, kernel, dtype): the sparse backward is bound by Python's time per launch
    key = (filename, name, dtype, extra)
    f = _FUNCTIONS.get(key)
    if f is None:
        dt = np.dtype(dtype)
        if dt not in _REAL:
            raise ValueError(f"S3GD kernels run in float32 or float64, got {dt}; cast the input first.")
        f = _FUNCTIONS[key] = get_function(filename, name, options=(f"-DREAL={_REAL[dt]}",) + tuple(extra))
    return f


class SideStream:
    """A second CUDA stream for work that nothing later in the backward waits on (the weight
    gradients of hidden2 and the readout), so that it runs beside the chain readout -> hidden2's
    input gradient -> hidden1 instead of after it.

    ``with side.run(*arrays): ...`` queues the block on the side stream after everything queued so
    far on the current one; ``arrays`` are kept alive until :meth:`join` (the memory pool could
    otherwise hand their memory to the main stream while the side stream still reads it).
    :meth:`join` makes the current stream wait for the side stream."""

    def __init__(self):
        self.stream, self.keep, self.used = None, [], False

    def mark(self):
        """An event at this point of the current stream (to start side work from, see run)."""
        import cupy as cp
        return cp.cuda.get_current_stream().record()

    @contextmanager
    def run(self, *keep, after=None):
        """Queue the block on the side stream after ``after`` (an event from :meth:`mark`; default:
        everything queued so far on the current stream)."""
        import cupy as cp
        if self.stream is None:
            self.stream = cp.cuda.Stream(non_blocking=True)
        self.stream.wait_event(after if after is not None else cp.cuda.get_current_stream().record())
        self.keep.extend(keep)
        self.used = True
        with self.stream:
            yield

    def join(self):
        import cupy as cp
        if self.used:
            cp.cuda.get_current_stream().wait_event(self.stream.record())
            self.keep.clear()
            self.used = False


def lif_forward(h, beta, threshold, out=None):
    """Fused LIF time loop: h [B,T,N] -> (V, S). Bit-identical to ``lif_simulate`` (no FMA).
    ``out``: (V, S) arrays to write into."""
    import cupy as cp
    h = cp.ascontiguousarray(h)
    B, T, N = h.shape
    V, S = (cp.empty_like(h), cp.empty_like(h)) if out is None else out
    k = _fn("s3gd_forward.cu", "s3gd_lif_forward", h.dtype, ("--fmad=false",))
    f = h.dtype.type
    launch_1d(k, B * N, (h, V, S, f(beta), f(threshold), np.int32(B), np.int32(T), np.int32(N)))
    return V, S


def scan_forward(x, a, c=1.0, out=None):
    """y[t] = a y[t-1] + c x[t] along axis 1 of x [B,T,N] (into ``out`` if given)."""
    import cupy as cp
    x = cp.ascontiguousarray(x)
    B, T, N = x.shape
    y = cp.empty_like(x) if out is None else out
    k = _fn("s3gd_forward.cu", "s3gd_scan_forward", x.dtype, ("--fmad=false",))
    f = x.dtype.type
    launch_1d(k, B * N, (x, y, f(a), f(c), np.int32(B), np.int32(T), np.int32(N)))
    return y


def scan_backward(gy, a, c=1.0):
    """Adjoint of :func:`scan_forward`: e[t] = gy[t] + a e[t+1], returns c e."""
    import cupy as cp
    gy = cp.ascontiguousarray(gy)
    B, T, N = gy.shape
    gx = cp.empty_like(gy)
    k = _fn("s3gd_dense_backward.cu", "s3gd_scan_backward", gy.dtype)
    f = gy.dtype.type
    launch_1d(k, B * N, (gy, gx, f(a), f(c), np.int32(B), np.int32(T), np.int32(N)))
    return gx


def lif_delta_dense(grad_s, V, r, beta, threshold, scale, band):
    """d = dL/dh [B,T,N] of the dense BPTT; ``r`` [B,N] is added to dL/dS at every step;
    ``band`` None means no truncation of the surrogate."""
    import cupy as cp
    grad_s, V = cp.ascontiguousarray(grad_s, dtype=V.dtype), cp.ascontiguousarray(V)
    B, T, N = V.shape
    r = cp.zeros((B, N), V.dtype) if r is None else cp.ascontiguousarray(r, dtype=V.dtype)
    d = cp.empty_like(V)
    k = _fn("s3gd_dense_backward.cu", "s3gd_lif_backward_dense", V.dtype)
    f = V.dtype.type
    launch_1d(k, B * N, (grad_s, V, r, d, f(beta), f(threshold), f(scale),
                         f(-1.0 if band is None else band), np.int32(B), np.int32(T), np.int32(N)))
    return d


CHUNK = 32          # time steps per compaction chunk (S3GD_CHUNK in the .cu)
JT = 32             # neurons per compaction block (S3GD_JT)
CHUNK_LANES = 16    # chunk lanes per compaction block: at most 512 threads (its __launch_bounds__)
_TICKETS: dict = {}


def _ticket():
    """The compaction's block counter of the current stream (zero between launches: the last block
    resets it), so launches on one stream never share a counter in flight."""
    import cupy as cp
    key = cp.cuda.get_current_stream().ptr
    if key not in _TICKETS:
        _TICKETS[key] = cp.zeros(1, dtype=cp.uint32)
    return _TICKETS[key]


def prepare_capture():
    """Make the current stream's per-stream state before a stream capture starts on it (inside
    a capture, the ticket's allocation and zeroing would become part of the graph)."""
    _ticket()


def active_entries(items, capacities=None):
    """Compact the band |V - threshold| < delta of each (V [B,T,N], threshold, delta) in ``items``.

    Returns (sets, totals): per item (offsets [B*N+1] int64, b, t, j int32, v), and a device
    int64 array of the items' entry counts. ``capacities`` None: the counts are brought to the host
    (all items' in one transfer) and the arrays have exactly that many entries. Otherwise the
    arrays hold ``capacities[k]`` entries and nothing waits for the GPU: entries past the capacity
    are not written, and the caller must compare ``totals`` with the capacities before trusting
    any result (Network.backward does, once, at its end)."""
    import cupy as cp
    totals = cp.empty(len(items), dtype=cp.int64)
    ticket = _ticket()
    staged = []
    for k, (V, threshold, delta) in enumerate(items):
        V = cp.ascontiguousarray(V)
        B, T, N = V.shape
        n_chunks = (T + CHUNK - 1) // CHUNK
        n, n_blocks = B * N * n_chunks, B * ((N + JT - 1) // JT)
        mask, local = cp.empty(n, dtype=cp.uint32), cp.empty(n, dtype=cp.int32)
        block_base = cp.empty(n_blocks, dtype=cp.int64)
        block_total = cp.empty(n_blocks, dtype=cp.int64)
        f = V.dtype.type
        _fn("s3gd_sparse_backward.cu", "s3gd_active_count_scan", V.dtype)(
            (n_blocks,), (JT, min(n_chunks, CHUNK_LANES)),
            (V, mask, local, block_total, block_base, totals[k:], ticket, f(threshold), f(delta),
             np.int32(B), np.int32(T), np.int32(N), np.int32(n_chunks)))
        staged.append((V, mask, local, block_base, n))
    if capacities is None:                                               # the one host sync
        capacities = totals.get()
    out = []
    for k, ((V, mask, local, block_base, n), cap) in enumerate(zip(staged, capacities)):
        B, T, N = V.shape
        cap = int(cap)
        offsets = cp.empty(B * N + 1, dtype=cp.int64)
        eb, et, ej = (cp.empty(cap, dtype=cp.int32) for _ in range(3))
        ev = cp.empty(cap, dtype=V.dtype)
        launch_1d(_fn("s3gd_sparse_backward.cu", "s3gd_active_fill", V.dtype), n,
                  (V, mask, local, block_base, totals[k:], offsets, eb, et, ej, ev, np.int64(cap),
                   np.int32(B), np.int32(T), np.int32(N), np.int32(n // (B * N))))
        out.append((offsets, eb, et, ej, ev))
    return out, totals


def entry_grad(grad_s, r, eb, ej, ev, offsets, threshold, scale, n_out):
    """g_e = (dL/dS_e + r[b_e, j_e]) sigma'(V_e - threshold) on the active entries (the count is
    read on the device, offsets[-1]; the arrays' length is the capacity)."""
    import cupy as cp
    cap = int(ev.shape[0])
    g = cp.empty_like(ev)
    k = _fn("s3gd_sparse_backward.cu", "s3gd_entry_grad", ev.dtype)
    f = ev.dtype.type
    launch_1d(k, cap, (cp.ascontiguousarray(grad_s, dtype=ev.dtype), cp.ascontiguousarray(r, dtype=ev.dtype),
                       eb, ej, ev, g, f(threshold), f(scale), offsets[-1:], np.int64(cap), np.int32(n_out)))
    return g


def sparse_weight_grad(g, et, offsets, trace, n_out):
    """dW [N_in, N] from the active entries' g and the input trace [B,T,N_in]."""
    import cupy as cp
    B, T, N_in = trace.shape
    dW = cp.empty((N_in, n_out), dtype=trace.dtype)
    if n_out > 65535:
        raise ValueError(f"the sparse weight-gradient kernel supports up to 65535 neurons per layer, got {n_out}")
    k = _fn("s3gd_sparse_backward.cu", "s3gd_sparse_weight_grad", trace.dtype)
    block = 128
    k(((N_in + block - 1) // block, n_out), (block,),
      (cp.ascontiguousarray(g), et, offsets, cp.ascontiguousarray(trace), dW, np.int64(et.shape[0]),
       np.int32(B), np.int32(T), np.int32(N_in), np.int32(n_out)))
    return dW


_POWERS = {}


def _powers(beta, T, dtype):
    """pw[n] = beta^n on the device, n < T (cached: an upload per call would cost a sync)."""
    import cupy as cp
    key = (float(beta), int(T), np.dtype(dtype))
    if key not in _POWERS:
        _POWERS[key] = cp.asarray((float(beta) ** np.arange(T, dtype=np.float64)).astype(dtype))
    return _POWERS[key]


IG_WARPS = 8        # inputs of the layer below per block of s3gd_sparse_input_grad, a warp each
IG_STAGE_BYTES = (16384, 24576)   # most shared memory for beta^n, for the warps' rows of W (else L1)


def sparse_input_grad(g, et, ej, offsets, qt, q_offsets, W, beta, T):
    """dL/dS_in at the entries q of the layer below (times qt; CSR over (b, i) by q_offsets, whose
    last value, on the device, is their count; their arrays' length is the capacity)."""
    import cupy as cp
    q_cap = int(qt.shape[0])
    out = cp.empty(q_cap, dtype=W.dtype)
    N_in, N = W.shape
    B = (int(q_offsets.shape[0]) - 1) // N_in
    k = _fn("s3gd_sparse_backward.cu", "s3gd_sparse_input_grad", W.dtype)
    size = np.dtype(W.dtype).itemsize
    stage_pw, stage_w = T * size <= IG_STAGE_BYTES[0], IG_WARPS * N * size <= IG_STAGE_BYTES[1]
    k((B * ((N_in + IG_WARPS - 1) // IG_WARPS),), (32 * IG_WARPS,),
      (cp.ascontiguousarray(g), et, ej, offsets, qt, q_offsets, cp.ascontiguousarray(W),
       _powers(beta, T, W.dtype), out, np.int64(q_cap), np.int64(et.shape[0]), np.int32(N_in), np.int32(N),
       np.int32(T), np.int32(stage_pw), np.int32(stage_w)),
      shared_mem=(T * stage_pw + IG_WARPS * N * stage_w) * size)
    return out


def linear_input_grad_at(e, W, qb, qt, qj, q_offsets):
    """dL/dS[q] = sum_c W[j_q, c] e[b_q, t_q, c] at the entries q (e [B,T,C], W [N,C])."""
    import cupy as cp
    q_cap = int(qb.shape[0])
    out = cp.empty(q_cap, dtype=W.dtype)
    B, T, C = e.shape
    k = _fn("s3gd_sparse_backward.cu", "s3gd_linear_input_grad_at", W.dtype)
    launch_1d(k, q_cap, (cp.ascontiguousarray(e, dtype=W.dtype), cp.ascontiguousarray(W), qb, qt, qj, out,
                         q_offsets[-1:], np.int64(q_cap), np.int32(T), np.int32(C)))
    return out


def readout_grad(grad_logits, t_max, a, c, T):
    """e = dL/dz [B,T,C] of the leaky readout in one kernel: dL/dout (dL/dlogits at t_max, or at
    every step where t_max is None: sum mode) run through the adjoint scan e[t] = gout[t] + a e[t+1],
    times c."""
    import cupy as cp
    gl = cp.ascontiguousarray(grad_logits)
    B, C = gl.shape
    e = cp.empty((B, T, C), dtype=gl.dtype)
    tm = gl if t_max is None else cp.ascontiguousarray(t_max, dtype=cp.int64)   # unused in sum mode
    k = _fn("s3gd_dense_backward.cu", "s3gd_readout_grad", gl.dtype)
    f = gl.dtype.type
    launch_1d(k, B * C, (gl, tm, e, f(a), f(c), np.int32(t_max is None), np.int32(B), np.int32(T), np.int32(C)))
    return e


RW_ROWS, RW_C = 8, 32     # row lanes and classes per block of s3gd_readout_weight_partial
_SM_COUNT: list = []


def _sm_count():
    import cupy as cp
    if not _SM_COUNT:
        _SM_COUNT.append(int(cp.cuda.Device().attributes["MultiProcessorCount"]))
    return _SM_COUNT[0]


def readout_weight_grad(s, e):
    """dW [N, C] = sum over (b, t) of s[b, t, j] e[b, t, c]: s [B,T,N] (spikes), e = dL/dz [B,T,C].
    The rows are split over enough blocks to fill the GPU (about 4 per SM); the slices' sums are
    added in a second kernel in a fixed order."""
    import cupy as cp
    s = cp.ascontiguousarray(s)
    e = cp.ascontiguousarray(e, dtype=s.dtype)
    B, T, N = s.shape
    C = e.shape[2]
    R = B * T
    n_j, n_c = (N + 31) // 32, (C + RW_C - 1) // RW_C
    n_split = max(1, min((R + 255) // 256, (4 * _sm_count() + n_j * n_c - 1) // (n_j * n_c)))
    rows = (R + n_split - 1) // n_split
    partial = cp.empty((n_split, N, C), dtype=s.dtype)
    dW = cp.empty((N, C), dtype=s.dtype)
    _fn("s3gd_dense_backward.cu", "s3gd_readout_weight_partial", s.dtype)(
        (n_j, n_split, n_c), (32, RW_ROWS), (s, e, partial, np.int64(R), np.int32(N), np.int32(C), np.int64(rows)))
    launch_1d(_fn("s3gd_dense_backward.cu", "s3gd_sum_partials", s.dtype), N * C,
              (partial, dW, np.int32(n_split), np.int64(N * C)))
    return dW


REG_BLOCK = 256     # threads per sample in s3gd_reg_grad (S3GD_REG_BLOCK: its shared-memory reduction)


def reg_grad(counts, f_up, f_low, up_coef, low_coef):
    """The activity regularizer's r [B, N] = dL/dcounts, one block per sample."""
    import cupy as cp
    c = cp.ascontiguousarray(counts)
    B, N = c.shape
    r = cp.empty_like(c)
    k = _fn("s3gd_dense_backward.cu", "s3gd_reg_grad", c.dtype)
    f = c.dtype.type
    k((B,), (REG_BLOCK,), (c, r, f(f_up), f(f_low), f(up_coef), f(low_coef), np.int32(N)))
    return r
