// BATS event list for a training step captured as a CUDA graph (snnkit/bats/graph.py).
// Twin: snnkit/bats/simulate.py::sort_events (NumPy path: a stable argsort of each sample's times).
// compile-options: -DBATS_SORT_CAP=4000 -DBATS_FWD_WARPS=4
//
// Why a kernel of its own: the eager path sorts with CuPy's argsort (thrust), which allocates its
// temporary storage and synchronizes with the host, so it cannot be recorded into a graph, and it
// sorts all N_in * S_in slots of a sample although most are +inf padding (24 000 slots of an
// 800 x 30 layer, ~600 of them spikes). Here one block owns one sample:
//   1. compact the finite times as (time key, flat index) pairs into shared memory, counting them
//      (more than SORT_CAP: a second pass puts them into global scratch; same code, slower memory);
//   2. bitonic sort of the n pairs by (time, flat index): the keys are unique, so the order is the
//      stable order of the eager sort, ties included (ties are common: MNIST has 256 intensities);
//   3. write ev_t, ev_i = index / S_in, ev_a = exp(t / tau_s), ev_b = exp(t / (2 tau_s)) for the n
//      events -- the same expressions as bats_forward.cu's gather_events, so the values are
//      bit-identical -- and one +inf sentinel (a = b = 0) after them when n < N_in * S_in.
// Slots after the sentinel keep whatever they held: bats_forward stops at the first +inf, and
// nothing else reads an event list.
//
// Sorting network: bitonic with ascending comparators only (the first pass of each stage compares
// i with its mirror i ^ (k - 1)). Positions >= n count as +inf: every comparator touching one is
// a no-op, so only pairs inside [0, n) are visited and no power-of-two padding is stored.

#include "bats_forward.cu"      // bats_event (one event of the neuron loop), exp_, sqrt_, log_

#ifndef BATS_SORT_CAP
#error "BATS_SORT_CAP (spikes per sample sorted in shared memory) comes from snnkit/bats/graph.py as -D"
#endif
#define SORT_CAP BATS_SORT_CAP

// Unsigned keys whose order is the float order. float32: the flipped bits, as bats_sort_keys_f32
// (so -0 sorts before +0 there too). float64: CuPy's argsort compares values (-0 == +0, stable by
// index), so -0 becomes +0 before the flip.
__device__ __forceinline__ unsigned long long time_key(float t) {
    unsigned int u = __float_as_uint(t);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return (unsigned long long)u;
}
__device__ __forceinline__ unsigned long long time_key(double t) {
    if (t == 0.0) t = 0.0;
    unsigned long long u = (unsigned long long)__double_as_longlong(t);
    return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

template <typename T>
__device__ void sort_events_block(const T* __restrict__ flat, int NS, int S_in, T tau_s,
                                  unsigned long long* g_key, unsigned int* g_idx,
                                  T* ev_t, int* ev_i, T* ev_a, T* ev_b) {
    __shared__ unsigned long long s_key[SORT_CAP];
    __shared__ unsigned int s_idx[SORT_CAP];
    __shared__ int s_n, s_fill;
    const long long b = blockIdx.x;
    const T* f = flat + b * NS;
    const T INF = (T)1.0 / (T)0.0;
    if (threadIdx.x == 0) s_n = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < NS; j += blockDim.x) {
        const T t = f[j];
        if (t < INF) {
            const int p = atomicAdd(&s_n, 1);         // any slot: the sort below fixes the order
            if (p < SORT_CAP) { s_key[p] = time_key(t); s_idx[p] = (unsigned int)j; }
        }
    }
    __syncthreads();
    const int n = s_n;
    unsigned long long* key = s_key;
    unsigned int* idx = s_idx;
    if (n > SORT_CAP) {                               // block-uniform: again, into global scratch
        key = g_key + b * NS;
        idx = g_idx + b * NS;
        if (threadIdx.x == 0) s_fill = 0;
        __syncthreads();
        for (int j = threadIdx.x; j < NS; j += blockDim.x) {
            const T t = f[j];
            if (t < INF) {
                const int p = atomicAdd(&s_fill, 1);
                key[p] = time_key(t);
                idx[p] = (unsigned int)j;
            }
        }
        __syncthreads();
    }
    for (int k = 2; k < 2 * n; k <<= 1) {             // k: power of two, up to the first >= n
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                const int l = (j == (k >> 1)) ? (i ^ (k - 1)) : (i ^ j);
                if (l > i && l < n) {
                    const unsigned long long ki = key[i], kl = key[l];
                    const unsigned int ii = idx[i], il = idx[l];
                    if (kl < ki || (kl == ki && il < ii)) {
                        key[i] = kl; key[l] = ki;
                        idx[i] = il; idx[l] = ii;
                    }
                }
            }
            __syncthreads();
        }
    }
    const long long o = b * NS;
    for (int k = threadIdx.x; k < n; k += blockDim.x) {
        const int j = (int)idx[k];
        const T t = f[j];
        ev_t[o + k] = t;
        ev_i[o + k] = j / S_in;
        ev_a[o + k] = exp_(t / tau_s);
        ev_b[o + k] = exp_(t / (2 * tau_s));
    }
    if (threadIdx.x == 0 && n < NS) {
        ev_t[o + n] = INF;
        ev_i[o + n] = 0;
        ev_a[o + n] = (T)0;
        ev_b[o + n] = (T)0;
    }
}

extern "C" __global__ void bats_sort_events_block_f32(const float* flat, int NS, int S_in, float tau_s,
    unsigned long long* g_key, unsigned int* g_idx, float* ev_t, int* ev_i, float* ev_a, float* ev_b) {
    sort_events_block<float>(flat, NS, S_in, tau_s, g_key, g_idx, ev_t, ev_i, ev_a, ev_b);
}
extern "C" __global__ void bats_sort_events_block_f64(const double* flat, int NS, int S_in, double tau_s,
    unsigned long long* g_key, unsigned int* g_idx, double* ev_t, int* ev_i, double* ev_a, double* ev_b) {
    sort_events_block<double>(flat, NS, S_in, tau_s, g_key, g_idx, ev_t, ev_i, ev_a, ev_b);
}

// --- forward with the event list staged in shared memory, one warp per neuron ----------------
// Twin: snnkit/bats/simulate.py::_simulate_numpy; the same arithmetic as bats_forward (both call
// bats_event with the same values in the same order), so the outputs are bit-identical.
// Why: a layer with few neurons (the 10 outputs) has only B * N (sample, neuron) chains, each a
// walk over its sample's whole event list (thousands of hidden spikes), so one thread per neuron
// leaves most of the GPU idle and each thread pays every event's crossing test (sqrt, division,
// log) itself. Here a warp owns one (sample, neuron) and takes its events 32 at a time:
//   1. the running sums a, b after each of the 32 events, added in event order exactly as the
//      one-by-one loop adds them (every lane runs the same short chain of multiply-adds over
//      shared-memory broadcasts; lane q keeps the sums after event q);
//   2. each lane tests its own event's first crossing (bats_fires: bats_try_spike's decision,
//      branch-free) -- 32 tests side by side instead of one after another;
//   3. a ballot finds the first event that fires; the state before it comes from its left
//      neighbour lane, bats_event runs it (all lanes alike, so the state stays warp-uniform) and
//      the next group starts right after it.
// Until the neuron's first spike in a group nothing resets b, so the tests before it are exactly
// the loop's. A block is FWD_WARPS warps (neurons) of one sample; its threads load FWD_CHUNK
// events at a time into shared memory (all loads in flight at once) and, when the tile's weights
// fit (stage_w: N_in x tile_width values, given as dynamic shared memory), those too.
// Grid: (B, ceil(N / FWD_WARPS)), block 32 * FWD_WARPS; outputs written as bats_forward writes them.
#define FWD_CHUNK 256
#ifndef BATS_FWD_WARPS
#error "BATS_FWD_WARPS (neurons per block of bats_forward_staged) comes from snnkit/bats/graph.py as -D"
#endif
#define FWD_WARPS BATS_FWD_WARPS        // neurons (warps) per block
#define FWD_THREADS (32 * FWD_WARPS)
#define FWD_LOADS ((FWD_CHUNK + FWD_THREADS) / FWD_THREADS)   // FWD_CHUNK + 1 slots per thread group

template <typename T>
__device__ void bats_forward_staged(const T* __restrict__ ev_t, const int* __restrict__ ev_i,
                                    const T* __restrict__ ev_a, const T* __restrict__ ev_b,
                                    const T* __restrict__ wT, int N, int K, int S, int N_in, int stage_w,
                                    T tau, T c, T r, T t_max, T dt,
                                    T* times, T* t_cont, T* x_out, int* counts, int* overflow) {
    extern __shared__ __align__(16) unsigned char fwd_smem[];
    T* s_w = reinterpret_cast<T*>(fwd_smem);          // [N_in][width] when stage_w
    __shared__ T s_t[FWD_CHUNK + 1], s_a[FWD_CHUNK], s_b[FWD_CHUNK];
    __shared__ int s_i[FWD_CHUNK];
    __shared__ int s_stop;
    const unsigned FULL = 0xffffffffu;
    const long long b = blockIdx.x;
    const int n0 = blockIdx.y * FWD_WARPS;
    const int width = min(FWD_WARPS, N - n0);         // neurons of this tile
    const int lane = threadIdx.x & 31, wn = threadIdx.x >> 5;
    const int n = n0 + wn;
    const bool active = wn < width;                   // warp-uniform
    const T INF = (T)1.0 / (T)0.0;
    if (stage_w) {                                    // 8 loads in flight per thread, then 8 stores
        const int total = N_in * width;
        for (int q0 = threadIdx.x; q0 < total; q0 += 8 * FWD_THREADS) {
            T v[8];
#pragma unroll
            for (int u = 0; u < 8; ++u) {
                const int q = q0 + u * FWD_THREADS;
                const int i = q / width;
                v[u] = q < total ? wT[(long long)i * N + n0 + (q - i * width)] : (T)0;
            }
#pragma unroll
            for (int u = 0; u < 8; ++u) {
                const int q = q0 + u * FWD_THREADS;
                if (q < total) s_w[q] = v[u];
            }
        }
    }
    if (threadIdx.x == 0) s_stop = 0;
    const long long tid = b * N + n;
    T a = 0, bb = 0;
    T last = -INF, last_d = -INF;
    int cnt = 0;
    // every lane of the warp holds the same state and writes the same spikes (same values to the
    // same addresses: one transaction)
    T* o_t = times + tid * S;
    T* o_c = t_cont + tid * S;
    T* o_x = x_out + tid * S;
    for (int k0 = 0; k0 < K; k0 += FWD_CHUNK) {
        const int m = min(FWD_CHUNK, K - k0);
        __syncthreads();                              // the previous chunk is consumed
        T lt[FWD_LOADS], la[FWD_LOADS], lb[FWD_LOADS];
        int li[FWD_LOADS];
#pragma unroll
        for (int u = 0; u < FWD_LOADS; ++u) {         // all of a thread's loads in flight, then stores
            const int j = threadIdx.x + u * FWD_THREADS;
            const long long g = b * K + k0 + j;
            lt[u] = INF; la[u] = lb[u] = 0; li[u] = 0;
            if (j < m) {
                lt[u] = ev_t[g]; li[u] = ev_i[g]; la[u] = ev_a[g]; lb[u] = ev_b[g];
            } else if (j == m && k0 + m < K) {        // the next event's time: t_next of the last
                lt[u] = ev_t[g];
            }
        }
#pragma unroll
        for (int u = 0; u < FWD_LOADS; ++u) {
            const int j = threadIdx.x + u * FWD_THREADS;
            if (j < m) { s_t[j] = lt[u]; s_i[j] = li[u]; s_a[j] = la[u]; s_b[j] = lb[u]; }
            else if (j == m) s_t[m] = lt[u];
            if (j <= m && !(lt[u] < INF)) s_stop = 1; // the list ends in or right after this chunk
        }
        __syncthreads();
        if (active) {
            int j = 0;
            while (j < m) {                           // warp-uniform loop: j, a, bb, last are the same in all lanes
                T ca = a, cb = bb, la_ = a, lb_ = bb; // running sums; this lane's after event j + lane
                int nv = 0;                           // events of the group before +inf / chunk end
                bool v = true;
#pragma unroll
                for (int q = 0; q < 32; ++q) {        // branch-free: the loads do not wait on the sums
                    const int jq = min(j + q, m - 1);
                    v = v & (j + q < m) & (s_t[jq] < INF);
                    const int i = v ? s_i[jq] : 0;    // slots past the sentinel may hold anything
                    const T w = stage_w ? s_w[i * width + wn] : wT[(long long)i * N + n];
                    const T na = ca + w * s_a[jq], nb = cb + w * s_b[jq];
                    ca = v ? na : ca;
                    cb = v ? nb : cb;
                    nv += v;
                    if (q == lane) { la_ = ca; lb_ = cb; }
                }
                const int jq = min(j + lane, m);      // past nv: any in-range slot, masked below
                const T tk = s_t[jq], tn = s_t[min(jq + 1, m)];
                const T limit = tn < t_max ? tn : t_max;
                const T lower = tk > last ? tk : last;
                const bool fires = (lane < nv) && bats_fires<T>(la_, lb_, lower, limit, last_d, tau, c, dt, t_max);
                const unsigned mask = __ballot_sync(FULL, fires);
                const int f = mask ? __ffs(mask) - 1 : nv;   // the first event of the group that fires
                if (f > 0) {                          // the state after the events before f
                    a = __shfl_sync(FULL, la_, f - 1);
                    bb = __shfl_sync(FULL, lb_, f - 1);
                }
                if (f < nv) {
                    const int jj = j + f;
                    const int i = s_i[jj];
                    const T w = stage_w ? s_w[i * width + wn] : wT[(long long)i * N + n];
                    bats_event<T>(w, s_t[jj], s_a[jj], s_b[jj], s_t[jj + 1], tau, c, r, t_max, dt, S,
                                  a, bb, last, last_d, cnt, o_t, o_c, o_x);
                    j = jj + 1;
                } else {
                    j += nv;
                    if (nv < 32 && j < m) break;      // +inf: sorted, only padding follows
                }
            }
        }
        if (s_stop) break;                            // block-uniform: read after the barrier
    }
    if (active && lane == 0) {
        const int stored = cnt < S ? cnt : S;
        counts[tid] = stored;
        overflow[tid] = cnt - stored;
    }
}

#define BATS_FORWARD_STAGED(SFX, T)                                                                \
extern "C" __global__ void bats_forward_staged_##SFX(                                              \
    const T* ev_t, const int* ev_i, const T* ev_a, const T* ev_b, const T* wT, int N, int K, int S, \
    int N_in, int stage_w, T tau, T c, T r, T t_max, T dt, T* times, T* t_cont, T* x_out,          \
    int* counts, int* overflow) {                                                                  \
    bats_forward_staged<T>(ev_t, ev_i, ev_a, ev_b, wT, N, K, S, N_in, stage_w, tau, c, r, t_max, dt,\
                           times, t_cont, x_out, counts, overflow);                                \
}
BATS_FORWARD_STAGED(f32, float)
BATS_FORWARD_STAGED(f64, double)
