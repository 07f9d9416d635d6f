// BATS forward: exact event-driven LIF, one thread per (sample, neuron).
// Twin: snnkit/bats/simulate.py::_simulate_numpy (same loop, same names).
//
// Inputs (per sample b, K events sorted in time, +inf padded):
//   ev_t[b,k] time, ev_i[b,k] input index, ev_a[b,k] = exp(t/tau_s), ev_b[b,k] = exp(t/tau)
//   wT[i, n] weights transposed, so that the neurons of a warp read neighbouring addresses.
// Outputs [B, N, S] (+inf / 0 pre-filled by the launcher): times (grid times when dt > 0),
//   t_cont (continuous; may alias times when dt == 0), x; counts and overflow [B, N].
// Threads are indexed with 64-bit arithmetic: the grid grows with B * N, no batch cap.

#include "bats_common.cuh"     // exp_, sqrt_, log_, grid_up_

// The earliest threshold crossing after ``lower`` and not after ``limit`` of a neuron with state
// (a, b) (twin: the condition block of snnkit/bats/simulate.py::_simulate_numpy's spike loop): true, with
// x = sqrt(b^2 - 4ac), z, the continuous time ts and the (grid) time td, when the neuron fires.
// On a grid a neuron reports at td, so a spike whose td lies past the window (t_max) is not emitted
// (the time-discretization study's rule, bats/CudaKernels/.../compute_spike_times.cu).
// Shared by every forward kernel, so that a speculative test (bats_graph.cu) and the loop agree
// to the bit.
template <typename T>
__device__ __forceinline__ bool bats_try_spike(T a, T bb, T lower, T limit, T last_d, T tau, T c, T dt,
                                               T t_max, T& x, T& z, T& ts, T& td) {
    const T disc = bb * bb - 4 * c * a;
    if (disc < 0) return false;
    x = sqrt_(disc);
    const T den = bb + x;
    if (!(den > 0)) return false;
    z = 2 * a / den;
    if (!(z > 0)) return false;
    ts = tau * log_(z);
    if (!(ts > lower) || ts > limit) return false;
    td = ts;
    if (dt > 0) {
        td = grid_up_(ts, dt);
        if (!(td > last_d)) return false;    // one-step refractory on the grid
        if (td > t_max) return false;        // reported after the window ends
    }
    return true;
}

// bats_try_spike's decision without branches: the same expressions (so the same bits and the
// same answer; a NaN fails a comparison in both), all evaluated, so that the compiler can
// interleave several such tests (bats_graph.cu tests 32 events at once, one per lane; with branches the
// tests ran one after the other).
template <typename T>
__device__ __forceinline__ bool bats_fires(T a, T bb, T lower, T limit, T last_d, T tau, T c, T dt,
                                           T t_max) {
    const T disc = bb * bb - 4 * c * a;
    const T x = sqrt_(disc);
    const T den = bb + x;
    const T z = 2 * a / den;
    const T ts = tau * log_(z);
    bool ok = (disc >= 0) & (den > 0) & (z > 0) & (ts > lower) & !(ts > limit);
    if (dt > 0) {
        const T td = grid_up_(ts, dt);
        ok = ok & (td > last_d) & !(td > t_max);
    }
    return ok;
}

// One input event of a neuron's loop (twin: the body of snnkit/bats/simulate.py::_simulate_numpy's loop):
// add the event's weighted a and b, then emit the spikes that fall before the next event (or
// t_max). Shared by bats_forward and bats_graph.cu's bats_forward_staged, so both compute the same
// bits.
template <typename T>
__device__ __forceinline__ void bats_event(T w, T tk, T eva, T evb, T t_next, T tau, T c, T r, T t_max,
                                           T dt, int S, T& a, T& bb, T& last, T& last_d, int& cnt,
                                           T* o_t, T* o_c, T* o_x) {
    a += w * eva;
    bb += w * evb;
    const T limit = t_next < t_max ? t_next : t_max;
    T lower = tk > last ? tk : last;
    T x, z, ts, td;
    while (bats_try_spike<T>(a, bb, lower, limit, last_d, tau, c, dt, t_max, x, z, ts, td)) {
        if (cnt < S) {                       // spikes before the next event
            o_t[cnt] = td;
            o_c[cnt] = ts;
            o_x[cnt] = x;
        }
        ++cnt;
        bb -= r * z;                         // subtractive reset, through b
        last = ts;
        last_d = td;
        lower = ts;
    }
}

template <typename T>
__device__ void bats_forward(const T* __restrict__ ev_t, const int* __restrict__ ev_i,
                             const T* __restrict__ ev_a, const T* __restrict__ ev_b,
                             const T* __restrict__ wT, long long B, int N, int K, int S,
                             T tau, T c, T r, T t_max, T dt,
                             T* times, T* t_cont, T* x_out, int* counts, int* overflow) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= B * N) return;
    const long long b = tid / N;
    const int n = (int)(tid - b * N);
    const T INF = (T)1.0 / (T)0.0;
    const T* et = ev_t + b * K;
    T a = 0, bb = 0;
    T last = -INF, last_d = -INF;            // last continuous output spike, and its grid time
    int cnt = 0;
    T* o_t = times + tid * S;
    T* o_c = t_cont + tid * S;
    T* o_x = x_out + tid * S;
    for (int k = 0; k < K; ++k) {
        const T tk = et[k];
        if (!(tk < INF)) break;              // events are sorted: only padding follows
        const T w = wT[(long long)ev_i[b * K + k] * N + n];
        const T t_next = (k + 1 < K) ? et[k + 1] : INF;
        bats_event<T>(w, tk, ev_a[b * K + k], ev_b[b * K + k], t_next, tau, c, r, t_max, dt, S,
                      a, bb, last, last_d, cnt, o_t, o_c, o_x);
    }
    const int stored = cnt < S ? cnt : S;
    counts[tid] = stored;
    overflow[tid] = cnt - stored;
}

#define BATS_FORWARD(SFX, T)                                                                       \
extern "C" __global__ void bats_forward_##SFX(                                                     \
    const T* ev_t, const int* ev_i, const T* ev_a, const T* ev_b, const T* wT, long long B, int N,  \
    int K, int S, T tau, T c, T r, T t_max, T dt, T* times, T* t_cont, T* x_out, int* counts,       \
    int* overflow) {                                                                               \
    bats_forward<T>(ev_t, ev_i, ev_a, ev_b, wT, B, N, K, S, tau, c, r, t_max, dt, times, t_cont,    \
                    x_out, counts, overflow);                                                      \
}
BATS_FORWARD(f32, float)
BATS_FORWARD(f64, double)

// --- event list (twin: snnkit/bats/simulate.py::sort_events) ------------------------------------
// Sort keys for float32 times: sample index in the high 32 bits, the time's bits in the low 32,
// flipped so that unsigned order == float order (negative times included). One 1-D radix sort of
// these keys orders every sample's spikes at once.
extern "C" __global__ void bats_sort_keys_f32(const float* __restrict__ t, long long total, int per_sample,
                                              unsigned long long* keys) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= total) return;
    unsigned int u = __float_as_uint(t[tid]);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    keys[tid] = ((unsigned long long)(tid / per_sample) << 32) | u;
}

// Gather the sorted events: order[b, k] is a flat index (global over the batch when
// order_is_global, else within the sample). Padding (+inf) events get a = b = 0.
template <typename T>
__device__ void gather_events(const T* __restrict__ flat, const long long* __restrict__ order,
                              long long B, int NS, int S_in, int order_is_global, T tau_s,
                              T* ev_t, int* ev_i, T* ev_a, T* ev_b) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= B * NS) return;
    const long long b = tid / NS;
    long long j = order[tid];
    if (order_is_global) j -= b * NS;
    const T t = flat[b * NS + j];
    const T INF = (T)1.0 / (T)0.0;
    const bool fin = t < INF;
    ev_t[tid] = t;
    ev_i[tid] = (int)(j / S_in);
    ev_a[tid] = fin ? exp_(t / tau_s) : (T)0;
    ev_b[tid] = fin ? exp_(t / (2 * tau_s)) : (T)0;
}
#define BATS_GATHER_EVENTS(SFX, T)                                                                 \
extern "C" __global__ void bats_gather_events_##SFX(const T* flat, const long long* order, long long B,\
    int NS, int S_in, int order_is_global, T tau_s, T* ev_t, int* ev_i, T* ev_a, T* ev_b) {          \
    gather_events<T>(flat, order, B, NS, S_in, order_is_global, tau_s, ev_t, ev_i, ev_a, ev_b); }
BATS_GATHER_EVENTS(f32, float)
BATS_GATHER_EVENTS(f64, double)
