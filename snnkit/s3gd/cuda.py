"""Launchers for the S3GD CUDA kernels (``kernels/s3gd_*.cu``); each mirrors a NumPy twin, and
the side streams of the sparse backward.

Every launcher takes and returns CuPy arrays and is only called by the twins' dispatchers (lif.py,
scan.py, sparse.py, readout.py, loss.py) when their inputs live on the GPU. Kernels are looked up
with :func:`snnkit.kernels.function` (``<name>_f32`` / ``<name>_f64`` by dtype) and compiled with
:data:`DEFINES`, the sizes this module shares with the .cu files (they have no value of their own).

Why the S3GD launchers sit here and not beside their twins, as BATS's and STBP's do: the sparse
backward's launchers share state that is neither the model's nor a twin's (the per-stream block
counters of the compaction, the cached powers beta^n, the SM count, the side streams), and the
twins' modules stay readable as the model's equations; graph.py's capture also needs to see
every launcher of one backward in one place. A dispatcher says which launcher it calls.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..backend import is_cupy_array
from ..kernels import function, launch_1d

# -- sizes shared with kernels/s3gd_*.cu (passed to NVRTC as -D; a file compiled without them #errors)
CHUNK = 32          # time steps per compaction chunk: one 32-bit mask word (S3GD_CHUNK <= 32)
JT = 32             # neurons per compaction block, one warp wide: coalesced reads of V (S3GD_JT)
CHUNK_LANES = 16    # chunk lanes per compaction block: JT * 16 = 512 threads, its __launch_bounds__
WG_BLOCK = 128      # threads (inputs i) per block of s3gd_sparse_weight_grad, = samples per tile
IG_WARPS = 8        # inputs of the layer below per block of s3gd_sparse_input_grad, a warp each
REG_BLOCK = 256     # threads per sample in s3gd_reg_grad (a power of two: its tree reduction)
RW_ROWS, RW_C = 8, 32   # row lanes and classes per block of s3gd_readout_weight_partial
DEFINES = {"S3GD_CHUNK": CHUNK, "S3GD_JT": JT, "S3GD_CHUNK_LANES": CHUNK_LANES, "S3GD_WG_BLOCK": WG_BLOCK,
           "S3GD_IG_WARPS": IG_WARPS, "S3GD_REG_BLOCK": REG_BLOCK, "S3GD_RW_ROWS": RW_ROWS, "S3GD_RW_C": RW_C}
_EXACT = ("--fmad=false",)   # the forward rounds like NumPy: spikes agree bit for bit with the twin


def side_streams(weight):
    """The GPU's two side streams for the sparse backward (None, None on NumPy); one pair per
    process, made on first use."""
    if not is_cupy_array(weight):
        return None, None
    if not _SIDE:
        _SIDE.extend([SideStream(), SideStream()])
    return _SIDE[0], _SIDE[1]


_SIDE: list = []


class SideStream:
    """A second CUDA stream for work beside the sparse backward's chain (compaction -> hidden2's
    input gradient -> hidden1), not before or after it: the weight gradients of hidden2 and the
    readout, which nothing later waits on, and the readout's e = dL/dz with the regularizer's
    terms, which the chain needs only after the compaction.

    ``with side.run(*arrays): ...`` queues the block on the side stream after everything queued so
    far on the current one; ``arrays`` are kept alive until :meth:`join` (the memory pool could
    otherwise hand their memory to the main stream while the side stream still reads it).
    :meth:`join` makes the current stream wait for the side stream; :meth:`hand_over` for a point
    of it (work whose results the main stream needs, queued on a side stream to run beside it)."""

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

    def hand_over(self, event):
        """Make the current stream wait for ``event``, a :meth:`mark` made inside :meth:`run` (on
        this side stream): the current stream takes over what the side stream had made by then,
        without waiting for the side work queued after it."""
        import cupy as cp
        cp.cuda.get_current_stream().wait_event(event)

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
    k = function("s3gd_forward.cu", "s3gd_lif_forward", h.dtype, DEFINES, _EXACT)
    f = h.dtype.type
    launch_1d(k, B * N, (h, V, S, f(beta), f(threshold), np.int32(B), np.int32(T), np.int32(N)))
    return V, S


def scan_forward(x, a, c=1.0, out=None):
    """y[t] = a y[t-1] + c x[t] along axis 1 of x [B,T,N] (into ``out`` if given)."""
    import cupy as cp
    x = cp.ascontiguousarray(x)
    B, T, N = x.shape
    y = cp.empty_like(x) if out is None else out
    k = function("s3gd_forward.cu", "s3gd_scan_forward", x.dtype, DEFINES, _EXACT)
    f = x.dtype.type
    launch_1d(k, B * N, (x, y, f(a), f(c), np.int32(B), np.int32(T), np.int32(N)))
    return y


def scan_backward(gy, a, c=1.0):
    """Adjoint of :func:`scan_forward`: e[t] = gy[t] + a e[t+1], returns c e."""
    import cupy as cp
    gy = cp.ascontiguousarray(gy)
    B, T, N = gy.shape
    gx = cp.empty_like(gy)
    k = function("s3gd_dense_backward.cu", "s3gd_scan_backward", gy.dtype, DEFINES)
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
    k = function("s3gd_dense_backward.cu", "s3gd_lif_backward_dense", V.dtype, DEFINES)
    f = V.dtype.type
    launch_1d(k, B * N, (grad_s, V, r, d, f(beta), f(threshold), f(scale),
                         f(-1.0 if band is None else band), np.int32(B), np.int32(T), np.int32(N)))
    return d


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
        function("s3gd_sparse_backward.cu", "s3gd_active_count_scan", V.dtype, DEFINES)(
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
        launch_1d(function("s3gd_sparse_backward.cu", "s3gd_active_fill", V.dtype, DEFINES), n,
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
    k = function("s3gd_sparse_backward.cu", "s3gd_entry_grad", ev.dtype, DEFINES)
    f = ev.dtype.type
    launch_1d(k, cap, (cp.ascontiguousarray(grad_s, dtype=ev.dtype), cp.ascontiguousarray(r, dtype=ev.dtype),
                       eb, ej, ev, g, f(threshold), f(scale), offsets[-1:], np.int64(cap), np.int32(n_out)))
    return g


def sparse_weight_grad(g, et, offsets, trace, n_out, out=None):
    """dW [N_in, N] from the active entries' g and the input trace [B,T,N_in] (into ``out``: every
    element is written)."""
    import cupy as cp
    B, T, N_in = trace.shape
    dW = cp.empty((N_in, n_out), dtype=trace.dtype) if out is None else out
    if n_out > 65535:
        raise ValueError(f"the sparse weight-gradient kernel supports up to 65535 neurons per layer, got {n_out}")
    k = function("s3gd_sparse_backward.cu", "s3gd_sparse_weight_grad", trace.dtype, DEFINES)
    k(((N_in + WG_BLOCK - 1) // WG_BLOCK, n_out), (WG_BLOCK,),
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


IG_STAGE_BYTES = (16384, 24576)   # most shared memory for beta^n, for the warps' rows of W (else L1)


def sparse_input_grad(g, et, ej, offsets, qt, q_offsets, W, beta, T):
    """dL/dS_in at the entries q of the layer below (times qt; CSR over (b, i) by q_offsets, whose
    last value, on the device, is their count; their arrays' length is the capacity)."""
    import cupy as cp
    q_cap = int(qt.shape[0])
    out = cp.empty(q_cap, dtype=W.dtype)
    N_in, N = W.shape
    B = (int(q_offsets.shape[0]) - 1) // N_in
    k = function("s3gd_sparse_backward.cu", "s3gd_sparse_input_grad", W.dtype, DEFINES)
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
    k = function("s3gd_sparse_backward.cu", "s3gd_linear_input_grad_at", W.dtype, DEFINES)
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
    k = function("s3gd_dense_backward.cu", "s3gd_readout_grad", gl.dtype, DEFINES)
    f = gl.dtype.type
    launch_1d(k, B * C, (gl, tm, e, f(a), f(c), np.int32(t_max is None), np.int32(B), np.int32(T), np.int32(C)))
    return e


_SM_COUNT: list = []


def _sm_count():
    import cupy as cp
    if not _SM_COUNT:
        _SM_COUNT.append(int(cp.cuda.Device().attributes["MultiProcessorCount"]))
    return _SM_COUNT[0]


def readout_weight_grad(s, e, out=None):
    """dW [N, C] = sum over (b, t) of s[b, t, j] e[b, t, c]: s [B,T,N] (spikes), e = dL/dz [B,T,C]
    (into ``out``, contiguous, if given). The rows are split over enough blocks to fill the GPU
    (about 4 per SM); the slices' sums are added in a second kernel in a fixed order."""
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
    dW = cp.empty((N, C), dtype=s.dtype) if out is None else out
    function("s3gd_dense_backward.cu", "s3gd_readout_weight_partial", s.dtype, DEFINES)(
        (n_j, n_split, n_c), (32, RW_ROWS), (s, e, partial, np.int64(R), np.int32(N), np.int32(C), np.int64(rows)))
    launch_1d(function("s3gd_dense_backward.cu", "s3gd_sum_partials", s.dtype, DEFINES), N * C,
              (partial, dW, np.int32(n_split), np.int64(N * C)))
    return dW


def reg_grad(counts, f_up, f_low, up_coef, low_coef):
    """The activity regularizer's r [B, N] = dL/dcounts, one block per sample."""
    import cupy as cp
    c = cp.ascontiguousarray(counts)
    B, N = c.shape
    r = cp.empty_like(c)
    k = function("s3gd_dense_backward.cu", "s3gd_reg_grad", c.dtype, DEFINES)
    f = c.dtype.type
    k((B,), (REG_BLOCK,), (c, r, f(f_up), f(f_low), f(up_coef), f(low_coef), np.int32(N)))
    return r
