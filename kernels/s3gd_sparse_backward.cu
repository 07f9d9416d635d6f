// S3GD sparse backward: gradient only through the active set A = {(b,t,j) : |V - threshold| < delta}.
// Twin: snnkit/s3gd/sparse.py (each kernel names its function). None of these kernels touches a
// dense [B, T, N] gradient:
//
// 1. s3gd_active_count_scan  per block (32 neurons of one sample x its time chunks of 32 steps):
//                       each chunk's band as a 32-bit mask, and the block's scan of their bit counts
//                       in (b, j, c) order; the last block to finish scans the blocks' totals into
//                       bases and writes the layer's total. One launch per layer, no separate scan.
// 2. s3gd_active_fill   one thread per (b, chunk c, j): expand the chunk's mask into entries
//                       (b, t, j, V) at base + local offset (one pass over V in all, not two), and
//                       write the CSR offsets over (b, j) (every c = 0 thread its own).
//                       Entries are grouped by sample, then neuron, then time.
//    Capacity: the entry arrays hold `cap` entries. The Python side sizes them from an earlier
//    step's count, so the backward needs no host synchronization before its last kernel; entries
//    past cap are not written, every later kernel reads at most min(total, cap) of them, and the
//    host compares the totals with cap once, at the end (on overflow the backward is redone with
//    exact sizes: nothing is dropped).
// 3. s3gd_entry_grad    g_e = (dL/dS_e + r[b_e, j_e]) sigma'(V_e - threshold), one thread per entry
//                       (r: the activity regularizer's time-constant part of dL/dS; sigma' is
//                       s3gd_fast_sigmoid_grad of s3gd_common.cuh).
// 4. s3gd_sparse_weight_grad   dW[i, j] = sum_{e in A, j_e = j} g_e tr[b_e, t_e, i]
//                       tr is the input trace tr[t] = beta tr[t-1] + S_in[t] (saved by the forward).
//                       Thread (i, j), i fastest, so a warp reads one contiguous trace row per entry;
//                       neuron j's entries are gathered through shared memory, sample tile by
//                       sample tile, in (b, t) order: no atomics, deterministic.
// 5. s3gd_sparse_input_grad    dL/dS_in at the entries q = (b, k, i) that the layer below needs
//                       (its own active set): sum over this layer's entries e of sample b with
//                       t_e >= k of beta^(t_e - k) g_e W[i, j_e]. A warp serves the queries of one
//                       (b, i) segment of the layer below's set, 4 at a time (SHD: ~2.4 per
//                       segment), its lanes walking sample b's entries (staged in shared memory):
//                       g_e W[i, j_e] once per entry for all 4.
//                       Cost |A_below| x |A_this| / B: it shrinks with the square of the activity.
// 6. s3gd_linear_input_grad_at dL/dS[b,t,j] = sum_c W[j, c] e[b, t, c] at the entries q only: the
//                       readout's (non-spiking, dense) gradient handed to the last hidden layer.
// pw[n] = beta^n is precomputed on the host, so no thread ever indexes before t = 0.
// f32/f64 as everywhere in kernels/: template __device__ functions, extern "C" wrappers
// <name>_f32 / <name>_f64 made by S3GD_SPARSE_BACKWARD at the end.
// Sizes shared with the launchers come from snnkit/s3gd/cuda.py as -D options (cuda.DEFINES):
// S3GD_CHUNK (time steps per mask word), S3GD_JT (neurons per compaction block),
// S3GD_CHUNK_LANES (its chunk lanes), S3GD_WG_BLOCK (weight-gradient block), S3GD_IG_WARPS.
#if !defined(S3GD_CHUNK) || !defined(S3GD_JT) || !defined(S3GD_CHUNK_LANES) || \
    !defined(S3GD_WG_BLOCK) || !defined(S3GD_IG_WARPS)
#error "compile with the -D options of snnkit.s3gd.cuda.DEFINES (launch through snnkit.kernels.function)"
#endif
#if S3GD_CHUNK > 32
#error "S3GD_CHUNK must be <= 32: a chunk's band is one 32-bit mask"
#endif
#include "s3gd_common.cuh"       // s3gd_fast_sigmoid_grad, s3gd_in_band

// Inclusive scans with warp shuffles: a warp's 32 values in 5 steps, a block's (nt threads, a
// multiple of 32, at most 1024, in linear-id order q) from its warps' totals; s_warp has 32 slots.
__device__ __forceinline__ long long s3gd_warp_inclusive_scan(long long v, int lane) {
    #pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        const long long u = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += u;
    }
    return v;
}

__device__ long long s3gd_block_inclusive_scan(long long v, int q, int nt, long long* s_warp) {
    const int lane = q & 31, w = q >> 5, nw = nt >> 5;
    __syncthreads();                                      // s_warp is free (an earlier scan read it)
    v = s3gd_warp_inclusive_scan(v, lane);
    if (lane == 31) s_warp[w] = v;
    __syncthreads();
    if (w == 0) {
        const long long u = s3gd_warp_inclusive_scan(lane < nw ? s_warp[lane] : 0, lane);
        if (lane < nw) s_warp[lane] = u;
    }
    __syncthreads();
    return w > 0 ? v + s_warp[w - 1] : v;
}

// Block: 32 neurons j of one sample b x CL chunk lanes (CL = min(n_chunks, 16)); thread (tx, ty)
// owns the consecutive chunks [ty * per, (ty + 1) * per) of neuron j0 + tx, so its chunks are
// consecutive in the (b, j, c) scan order and the block covers one contiguous stretch of it. Reads
// of V are coalesced over tx (a warp is 32 neurons at the same steps). mask and local are stored
// in (b, c, j) order, j fastest, so that their stores here and their loads in the fill are
// coalesced too; only the scan runs in (b, j, c) order. At most 512 threads, two blocks per SM:
// a chunk's 32 loads stay in flight together in registers. Twin: snnkit/s3gd/sparse.py::_active_set_numpy.
#define S3GD_COUNT_THREADS (S3GD_JT * S3GD_CHUNK_LANES)      // 512: __launch_bounds__ below
template <typename real>
__device__ void active_count_scan(const real* __restrict__ V, unsigned int* __restrict__ mask,
                                  int* __restrict__ local, long long* __restrict__ block_total,
                                  long long* __restrict__ block_base, long long* __restrict__ total,
                                  unsigned int* __restrict__ ticket, const real threshold,
                                  const real delta, const int B, const int T, const int N,
                                  const int n_chunks) {
    __shared__ long long s_sum[S3GD_COUNT_THREADS];
    __shared__ long long s_warp[32];
    __shared__ bool s_last;
    const int tx = threadIdx.x, ty = threadIdx.y, CL = blockDim.y;
    const int gx = (N + S3GD_JT - 1) / S3GD_JT;
    const long long b = blockIdx.x / gx;
    const int j = (int)(blockIdx.x % gx) * S3GD_JT + tx;
    const int per = (n_chunks + CL - 1) / CL;
    const int c0 = min(n_chunks, ty * per), c1 = min(n_chunks, c0 + per);
    long long mine = 0;                                   // this thread's active entries
    if (j < N)
        for (int c = c0; c < c1; ++c) {
            const int t0 = c * S3GD_CHUNK;
            const real* v = V + (b * T + t0) * N + j;
            unsigned int m = 0;                           // bit s: step t0 + s is active
            #pragma unroll                                // all 32 loads in flight at once
            for (int s = 0; s < S3GD_CHUNK; ++s)
                if (t0 + s < T)
                    m |= (unsigned int)s3gd_in_band(v[s * N], threshold, delta) << s;
            mask[(b * n_chunks + c) * N + j] = m;
            mine += __popc(m);
        }
    const int p = tx * CL + ty, nt = S3GD_JT * CL;       // the thread's rank in the scan order
    const int q = ty * S3GD_JT + tx;                      // the scan runs by linear thread id (lanes
    s_sum[p] = mine;                                      // of a warp: consecutive ranks)
    __syncthreads();
    const long long incl = s3gd_block_inclusive_scan(s_sum[q], q, nt, s_warp);
    s_sum[q] = incl;                                      // every s_sum[q] was read before the scan's syncs
    __syncthreads();
    int run = (int)(s_sum[p] - mine);                     // entries before this thread's, in the block
    if (j < N)
        for (int c = c0; c < c1; ++c) {
            const long long k = (b * n_chunks + c) * N + j;
            local[k] = run;
            run += __popc(mask[k]);
        }
    // the last block to finish turns all blocks' totals into their bases (an exclusive scan)
    const int nb = gridDim.x;
    if (q == nt - 1) {
        block_total[blockIdx.x] = incl;
        __threadfence();
        s_last = atomicAdd(ticket, 1u) == (unsigned int)(nb - 1);
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    const volatile long long* bt = block_total;          // written by other blocks
    const int seg = (nb + nt - 1) / nt, r0 = min(nb, q * seg), r1 = min(nb, r0 + seg);
    long long part = 0;
    for (int r = r0; r < r1; ++r) part += bt[r];
    const long long upto = s3gd_block_inclusive_scan(part, q, nt, s_warp);
    long long base = upto - part;
    for (int r = r0; r < r1; ++r) {
        const long long v = bt[r];
        block_base[r] = base;
        base += v;
    }
    if (q == nt - 1) {
        *total = upto;
        *ticket = 0;                                      // ready for the next launch on this stream
    }
}

// One thread per (b, chunk c, j), j fastest (coalesced mask/V reads as in the count).
template <typename real>
__device__ void active_fill(const real* __restrict__ V, const unsigned int* __restrict__ mask,
                            const int* __restrict__ local, const long long* __restrict__ block_base,
                            const long long* __restrict__ total, long long* __restrict__ offsets,
                            int* __restrict__ eb, int* __restrict__ et, int* __restrict__ ej,
                            real* __restrict__ ev, const long long cap, const int B, const int T,
                            const int N, const int n_chunks) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)B * n_chunks * N) return;
    long long j = idx % N, rest = idx / N;
    long long c = rest % n_chunks, b = rest / n_chunks;
    const int gx = (N + S3GD_JT - 1) / S3GD_JT;
    long long e = block_base[b * gx + j / S3GD_JT] + local[idx];       // idx = (b * n_chunks + c) * N + j
    if (c == 0) offsets[b * N + j] = e;                                 // CSR over (b, j)
    if (idx == 0) offsets[(long long)B * N] = *total;
    for (unsigned int m = mask[idx]; m && e < cap; m &= m - 1) {       // active steps, in time order
        const int t = (int)c * S3GD_CHUNK + __ffs(m) - 1;
        eb[e] = (int)b; et[e] = t; ej[e] = (int)j; ev[e] = V[(b * T + t) * N + j];
        ++e;
    }
}

// Twin: snnkit/s3gd/sparse.py::entry_grad
template <typename real>
__device__ void entry_grad(const real* __restrict__ grad_s, const real* __restrict__ r,
                           const int* __restrict__ eb, const int* __restrict__ ej,
                           const real* __restrict__ ev, real* __restrict__ g, const real threshold,
                           const real scale, const long long* __restrict__ total,
                           const long long cap, const int N) {
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= min(*total, cap)) return;
    g[e] = (grad_s[e] + r[(long long)eb[e] * N + ej[e]]) * s3gd_fast_sigmoid_grad(ev[e], threshold, scale);
}

// Block (i-tile of S3GD_WG_BLOCK inputs, neuron j). Neuron j's entries lie in B short segments
// (b, j) of the (b, j, t)-ordered list. For a tile of S3GD_WG_BLOCK samples, the block loads the
// segment bounds, prefix-sums their lengths, and gathers the entries' (trace row, g) into shared
// memory; then each thread streams the gathered rows of its input i. The loads of different
// entries are independent, so many are in flight at once (a thread walking the segments itself
// would wait on offsets -> et -> trace, one dependent chain per entry). Twin: snnkit/s3gd/sparse.py::sparse_weight_grad
template <typename real>
__device__ void sparse_weight_grad(const real* __restrict__ g, const int* __restrict__ et,
                                   const long long* __restrict__ offsets,
                                   const real* __restrict__ trace, real* __restrict__ dW,
                                   const long long cap, const int B, const int T, const int N_in,
                                   const int N) {
    __shared__ long long s_start[S3GD_WG_BLOCK];
    __shared__ int s_pos[S3GD_WG_BLOCK + 1];         // exclusive prefix sum of segment lengths
    __shared__ long long s_row[S3GD_WG_BLOCK];
    __shared__ real s_g[S3GD_WG_BLOCK];
    const int tid = threadIdx.x;
    const int i = blockIdx.x * S3GD_WG_BLOCK + tid;
    const int j = blockIdx.y;                         // gridDim.y = N <= 65535
    real acc = 0;
    for (int b0 = 0; b0 < B; b0 += S3GD_WG_BLOCK) {
        const int b = b0 + tid;
        long long start = 0, len = 0;
        if (b < B) {                                  // entries past cap were not written
            start = min(offsets[(long long)b * N + j], cap);
            len = min(offsets[(long long)b * N + j + 1], cap) - start;
        }
        __syncthreads();                              // the previous tile is no longer read
        s_start[tid] = start;
        s_pos[tid + 1] = (int)len;                    // a segment holds at most T entries
        if (tid == 0) s_pos[0] = 0;
        __syncthreads();
        for (int step = 1; step < S3GD_WG_BLOCK; step <<= 1) {   // inclusive scan of s_pos[1..]
            int v = (tid + 1 > step) ? s_pos[tid + 1 - step] : 0;
            __syncthreads();
            s_pos[tid + 1] += v;
            __syncthreads();
        }
        const int L = s_pos[S3GD_WG_BLOCK];
        for (int f0 = 0; f0 < L; f0 += S3GD_WG_BLOCK) {
            const int f = f0 + tid;
            if (f < L) {                              // segment holding flat index f: binary search
                int lo = 0, hi = S3GD_WG_BLOCK;       // invariant s_pos[lo] <= f < s_pos[hi]
                while (hi - lo > 1) {
                    int mid = (lo + hi) >> 1;
                    if (s_pos[mid] <= f) lo = mid; else hi = mid;
                }
                const long long e = s_start[lo] + (f - s_pos[lo]);
                s_row[tid] = ((long long)(b0 + lo) * T + et[e]) * N_in;
                s_g[tid] = g[e];
            }
            __syncthreads();
            const int n = min(S3GD_WG_BLOCK, L - f0);
            if (i < N_in) {
                #pragma unroll 8
                for (int k = 0; k < n; ++k) acc += s_g[k] * trace[s_row[k] + i];
            }
            __syncthreads();
        }
    }
    if (i < N_in) dW[(long long)i * N + j] = acc;
}

// Block: one sample b x S3GD_IG_WARPS inputs i of the layer below, warp w <-> input i0 + w. The
// queries of (b, i) are one CSR segment of the layer below's set; the block stages sample b's
// entries of this layer (t, j, g) through shared memory in tiles, and each warp's lanes walk a
// tile computing g_e W[i, j_e] once per entry for S3GD_IG_KQ of its queries at a time; a shuffle
// tree sums the lanes into out[q] (added over the tiles: a warp owns its queries). The lanes'
// lookups W[i, j_e] and beta^(t_e - k) land on scattered addresses; from L1 each costs one pass
// per 128-byte line touched (~13-16 per warp), from shared memory one per bank conflict (~3), so
// pw and the warps' rows of W are staged in shared memory too when they fit (stage_pw, stage_w;
// dynamic shared memory: pw first, then the rows). Twin: snnkit/s3gd/sparse.py::sparse_input_grad
#define S3GD_IG_KQ 4          // CUDA-only tuning: queries per warp pass, entries per staged tile
#define S3GD_IG_TILE 512
template <typename real>
__device__ void sparse_input_grad(const real* __restrict__ g, const int* __restrict__ et,
                                  const int* __restrict__ ej, const long long* __restrict__ offsets,
                                  const int* __restrict__ qt, const long long* __restrict__ q_offsets,
                                  const real* __restrict__ W, const real* __restrict__ pw,
                                  real* __restrict__ out, const long long q_cap, const long long cap,
                                  const int N_in, const int N, const int T, const int stage_pw,
                                  const int stage_w) {
    __shared__ real s_g[S3GD_IG_TILE];
    __shared__ int s_t[S3GD_IG_TILE];
    __shared__ int s_j[S3GD_IG_TILE];
    extern __shared__ __align__(16) unsigned char s_raw[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int groups = (N_in + S3GD_IG_WARPS - 1) / S3GD_IG_WARPS;
    const long long b = blockIdx.x / groups;
    const int i = (int)(blockIdx.x % groups) * S3GD_IG_WARPS + warp;
    long long q0 = 0, q1 = 0;                             // past q_cap: not written
    if (i < N_in) {
        q0 = min(q_offsets[b * N_in + i], q_cap);
        q1 = min(q_offsets[b * N_in + i + 1], q_cap);
    }
    const real* Wi = W + (long long)(i < N_in ? i : 0) * N;
    const real* P = pw;                                   // beta^n
    const real* Wrow = Wi;                                // W[i, :]
    real* s_dyn = (real*)s_raw;
    if (stage_pw) {
        for (int x = threadIdx.x; x < T; x += blockDim.x) s_dyn[x] = pw[x];
        P = s_dyn;
    }
    if (stage_w) {
        real* row = s_dyn + (stage_pw ? T : 0) + warp * N;
        if (q0 < q1)
            for (int x = lane; x < N; x += 32) row[x] = Wi[x];
        Wrow = row;
    }
    const long long e_begin = min(offsets[b * N], cap), e_end = min(offsets[(b + 1) * N], cap);
    for (long long tile = e_begin; tile < e_end; tile += S3GD_IG_TILE) {   // the same for the block
        const int n = (int)min((long long)S3GD_IG_TILE, e_end - tile);
        __syncthreads();                                  // the previous tile is no longer read
        for (int s = threadIdx.x; s < n; s += blockDim.x) {
            s_g[s] = g[tile + s]; s_t[s] = et[tile + s]; s_j[s] = ej[tile + s];
        }
        __syncthreads();                                  // (also orders the staging above)
        for (long long qc = q0; qc < q1; qc += S3GD_IG_KQ) {
            const int nq = (int)min((long long)S3GD_IG_KQ, q1 - qc);
            int k[S3GD_IG_KQ];
            real acc[S3GD_IG_KQ];
            #pragma unroll
            for (int u = 0; u < S3GD_IG_KQ; ++u) {
                k[u] = u < nq ? qt[qc + u] : 0x7fffffff;                 // no t_e reaches it
                acc[u] = 0;
            }
            for (int s = lane; s < n; s += 32) {
                const int t = s_t[s];
                const real gw = s_g[s] * Wrow[s_j[s]];
                #pragma unroll
                for (int u = 0; u < S3GD_IG_KQ; ++u)
                    if (t >= k[u]) acc[u] += P[t - k[u]] * gw;
            }
            #pragma unroll
            for (int u = 0; u < S3GD_IG_KQ; ++u) {
                real v = acc[u];
                #pragma unroll
                for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
                if (lane == 0 && u < nq) out[qc + u] = (tile == e_begin ? real(0) : out[qc + u]) + v;
            }
        }
    }
    if (e_begin == e_end)                                 // no entries in sample b: the gradient is 0
        for (long long q = q0 + lane; q < q1; q += 32) out[q] = 0;
}

// Twin: snnkit/s3gd/sparse.py::linear_input_grad_at
template <typename real>
__device__ void linear_input_grad_at(const real* __restrict__ e, const real* __restrict__ W,
                                     const int* __restrict__ qb, const int* __restrict__ qt,
                                     const int* __restrict__ qj, real* __restrict__ out,
                                     const long long* __restrict__ q_total, const long long q_cap,
                                     const int T, const int C) {
    long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= min(*q_total, q_cap)) return;
    const real* eq = e + ((long long)qb[q] * T + qt[q]) * C;
    const real* Wj = W + (long long)qj[q] * C;
    real acc = 0;
    for (int c = 0; c < C; ++c) acc += Wj[c] * eq[c];
    out[q] = acc;
}

#define S3GD_SPARSE_BACKWARD(real, SFX)                                                            \
extern "C" __global__ void __launch_bounds__(S3GD_COUNT_THREADS, 2)                                \
s3gd_active_count_scan_##SFX(const real* V, unsigned int* mask, int* local, long long* block_total, \
    long long* block_base, long long* total, unsigned int* ticket, const real threshold,            \
    const real delta, const int B, const int T, const int N, const int n_chunks) {                  \
    active_count_scan<real>(V, mask, local, block_total, block_base, total, ticket, threshold,      \
                            delta, B, T, N, n_chunks); }                                            \
extern "C" __global__ void s3gd_active_fill_##SFX(const real* V, const unsigned int* mask,         \
    const int* local, const long long* block_base, const long long* total, long long* offsets,      \
    int* eb, int* et, int* ej, real* ev, const long long cap, const int B, const int T, const int N,\
    const int n_chunks) {                                                                           \
    active_fill<real>(V, mask, local, block_base, total, offsets, eb, et, ej, ev, cap, B, T, N,     \
                      n_chunks); }                                                                  \
extern "C" __global__ void s3gd_entry_grad_##SFX(const real* grad_s, const real* r, const int* eb, \
    const int* ej, const real* ev, real* g, const real threshold, const real scale,                 \
    const long long* total, const long long cap, const int N) {                                     \
    entry_grad<real>(grad_s, r, eb, ej, ev, g, threshold, scale, total, cap, N); }                  \
extern "C" __global__ void s3gd_sparse_weight_grad_##SFX(const real* g, const int* et,             \
    const long long* offsets, const real* trace, real* dW, const long long cap, const int B,        \
    const int T, const int N_in, const int N) {                                                     \
    sparse_weight_grad<real>(g, et, offsets, trace, dW, cap, B, T, N_in, N); }                      \
extern "C" __global__ void s3gd_sparse_input_grad_##SFX(const real* g, const int* et, const int* ej,\
    const long long* offsets, const int* qt, const long long* q_offsets, const real* W,             \
    const real* pw, real* out, const long long q_cap, const long long cap, const int N_in,          \
    const int N, const int T, const int stage_pw, const int stage_w) {                              \
    sparse_input_grad<real>(g, et, ej, offsets, qt, q_offsets, W, pw, out, q_cap, cap, N_in, N, T,  \
                            stage_pw, stage_w); }                                                   \
extern "C" __global__ void s3gd_linear_input_grad_at_##SFX(const real* e, const real* W,           \
    const int* qb, const int* qt, const int* qj, real* out, const long long* q_total,               \
    const long long q_cap, const int T, const int C) {                                              \
    linear_input_grad_at<real>(e, W, qb, qt, qj, out, q_total, q_cap, T, C); }
S3GD_SPARSE_BACKWARD(float, f32)
S3GD_SPARSE_BACKWARD(double, f64)
