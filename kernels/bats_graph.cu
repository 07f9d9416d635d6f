// BATS event list for a training step captured as a CUDA graph (snnkit/bats/graph.py).
// Twin: snnkit/bats/simulate.py::sort_events (NumPy path: a stable argsort of each sample's times).
// compile-options: -DBATS_SORT_CAP=4000
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

// --- forward with the event list staged in shared memory ----------------------------------------
// Twin: snnkit/bats/simulate.py::_simulate_numpy; the same arithmetic as bats_forward (both call
// bats_event with the same values in the same order), so the outputs are bit-identical.
// Why: in bats_forward each (sample, neuron) thread walks its sample's event list alone, one
// dependent chain of global loads per event (ev_i, then the weight it selects). A layer with few
// neurons (the 10 outputs) has only B * N threads, so nothing hides that latency and the loop over
// ~600 hidden spikes is the longest kernel of a step. Here a block owns one sample and a tile of
// its neurons: it loads FWD_CHUNK events at a time into shared memory with all its threads (the
// loads overlap), and, when the tile's weights fit (stage_w: N_in x tile_width values, given as
// dynamic shared memory), those too, so the per-event chain reads shared memory only.
// Grid: (B, ceil(N / blockDim.x)); outputs are written as bats_forward writes them.
#define FWD_CHUNK 128
#define FWD_SPEC 8                      // events tested together (see below)

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
    const long long b = blockIdx.x;
    const int n0 = blockIdx.y * blockDim.x;
    const int width = min((int)blockDim.x, N - n0);  // neurons of this tile
    const int n = n0 + threadIdx.x;
    const bool active = threadIdx.x < width;
    const T INF = (T)1.0 / (T)0.0;
    if (stage_w) {                                    // 8 loads in flight per thread, then 8 stores
        const int total = N_in * width;
        for (int q0 = threadIdx.x; q0 < total; q0 += 8 * blockDim.x) {
            T v[8];
#pragma unroll
            for (int u = 0; u < 8; ++u) {
                const int q = q0 + u * blockDim.x;
                const int i = q / width;
                v[u] = q < total ? wT[(long long)i * N + n0 + (q - i * width)] : (T)0;
            }
#pragma unroll
            for (int u = 0; u < 8; ++u) {
                const int q = q0 + u * blockDim.x;
                if (q < total) s_w[q] = v[u];
            }
        }
    }
    if (threadIdx.x == 0) s_stop = 0;
    const long long tid = b * N + n;
    T a = 0, bb = 0;
    T last = -INF, last_d = -INF;
    int cnt = 0;
    T* o_t = times + tid * S;
    T* o_c = t_cont + tid * S;
    T* o_x = x_out + tid * S;
    for (int k0 = 0; k0 < K; k0 += FWD_CHUNK) {
        const int m = min(FWD_CHUNK, K - k0);
        __syncthreads();                              // the previous chunk is consumed
        for (int j = threadIdx.x; j <= m; j += blockDim.x) {
            const long long g = b * K + k0 + j;
            T t;
            if (j < m) {
                t = ev_t[g];
                s_t[j] = t; s_i[j] = ev_i[g]; s_a[j] = ev_a[g]; s_b[j] = ev_b[g];
            } else {                                  // the next event's time: t_next of the last
                t = (k0 + m < K) ? ev_t[g] : INF;
                s_t[m] = t;
            }
            if (!(t < INF)) s_stop = 1;               // the list ends in or right after this chunk
        }
        __syncthreads();
        if (active) {
            // Groups of FWD_SPEC events: their running sums a, b (added in event order, the same
            // bits as the one-by-one loop) and, independently of one another, whether each one's
            // first crossing test fires. Until a neuron's first spike in the group nothing resets
            // b, so those tests are exactly the loop's; the tests are independent chains of
            // sqrt / div / log that the SM overlaps, instead of one chain per event. The first
            // event that fires is then run by bats_event from the state before it, and the next
            // group starts after it.
            int j = 0;
            while (j < m) {
                T A[FWD_SPEC], Bq[FWD_SPEC];
                int nv = 0;                           // events of the group before +inf / chunk end
                bool v = true;
                T ca = a, cb = bb;
#pragma unroll
                for (int q = 0; q < FWD_SPEC; ++q) {  // branch-free: the four loads overlap
                    const int jq = min(j + q, m - 1);
                    v = v & (j + q < m) & (s_t[jq] < INF);
                    const int i = v ? s_i[jq] : 0;    // slots past the sentinel may hold anything
                    const T w = stage_w ? s_w[i * width + threadIdx.x] : wT[(long long)i * N + n];
                    const T na = ca + w * s_a[jq], nb = cb + w * s_b[jq];
                    ca = v ? na : ca;
                    cb = v ? nb : cb;
                    nv += v;
                    A[q] = ca;
                    Bq[q] = cb;
                }
                bool fires[FWD_SPEC];                 // independent tests, interleaved by the compiler
#pragma unroll
                for (int q = 0; q < FWD_SPEC; ++q) {
                    const int jq = min(j + q, m);     // past nv: any in-range slot, masked below
                    const T tk = s_t[jq], tn = s_t[min(jq + 1, m)];
                    const T limit = tn < t_max ? tn : t_max;
                    const T lower = tk > last ? tk : last;
                    fires[q] = (q < nv) & bats_fires<T>(A[q], Bq[q], lower, limit, last_d, tau, c, dt);
                }
                int f = nv;                           // the first event of the group that fires
#pragma unroll
                for (int q = FWD_SPEC - 1; q >= 0; --q)
                    if (fires[q]) f = q;
#pragma unroll
                for (int q = 0; q < FWD_SPEC; ++q)    // the state after the events before f
                    if (q + 1 == f) { a = A[q]; bb = Bq[q]; }
                if (f < nv) {
                    const int jj = j + f;
                    const int i = s_i[jj];
                    const T w = stage_w ? s_w[i * width + threadIdx.x] : wT[(long long)i * N + n];
                    bats_event<T>(w, s_t[jj], s_a[jj], s_b[jj], s_t[jj + 1], tau, c, r, t_max, dt, S,
                                  a, bb, last, last_d, cnt, o_t, o_c, o_x);
                    j = jj + 1;
                } else {
                    j += nv;
                    if (nv < FWD_SPEC && j < m) break;  // +inf: sorted, only padding follows
                }
            }
        }
        if (s_stop) break;                            // block-uniform: read after the barrier
    }
    if (active) {
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
