// BATS backward. Twins: snnkit/bats/backward.py (spike_factors, weight_grad, input_grad).
// Layouts: spike times [B, N, S] sorted per neuron (+inf padded), counts [B, N].

#include "bats_common.cuh"     // exp_

// 1 + 2. One thread per (sample, neuron): reset recurrence in reverse, then the suffix sums
//   G1_k = sum_{k' >= k} e^_k' f1_k',  G2_k = sum_{k' >= k} e^_k' f2_k'   (0 on padding slots)
template <typename T>
__device__ void spike_factors(const T* __restrict__ t_cont, const T* __restrict__ x,
                              const int* __restrict__ counts, const T* __restrict__ grad,
                              long long BN, int S, T tau, T c, T r, T guard, T* G1, T* G2) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= BN) return;
    const int cnt = counts[tid];
    const long long o = tid * S;
    T acc = 0, s1 = 0, s2 = 0;                     // acc = sum_{k > j} e^_k / x_k
    for (int k = S - 1; k >= cnt; --k) { G1[o + k] = 0; G2[o + k] = 0; }
    for (int k = cnt - 1; k >= 0; --k) {
        const T z = exp_(t_cont[o + k] / tau);
        T xg = x[o + k];
        if (xg < guard * c * z) xg = guard * c * z;  // grazing guard
        const T eh = grad[o + k] + z * r * acc;
        acc += eh / xg;
        s1 += eh * tau / (xg * z);
        s2 += eh * tau / xg;
        G1[o + k] = s1;
        G2[o + k] = s2;
    }
}

// 3. dL/dw. One thread per (batch chunk, neuron n, input i), i fastest: the input times of a warp
// are neighbours in memory; the neuron's output train is shared by the warp. For each sample, the
// sorted input spikes and output spikes are merged with one pointer.
template <typename T>
__device__ void weight_grad(const T* __restrict__ t_in, const T* __restrict__ t_out,
                            const int* __restrict__ counts, const T* __restrict__ G1,
                            const T* __restrict__ G2, int B, int N, int N_in, int S_in, int S,
                            int n_chunks, T tau_s, T* part) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long NI = (long long)N * N_in;
    if (tid >= NI * n_chunks) return;
    const int chunk = (int)(tid / NI);
    const long long ni = tid - chunk * NI;
    const int n = (int)(ni / N_in);
    const int i = (int)(ni - (long long)n * N_in);
    const T tau = 2 * tau_s;
    const T INF = (T)1.0 / (T)0.0;
    T acc = 0;
    for (int b = chunk; b < B; b += n_chunks) {
        const long long post = ((long long)b * N + n);
        const int cnt = counts[post];
        if (cnt == 0) continue;
        const T* to = t_out + post * S;
        const T* ti = t_in + ((long long)b * N_in + i) * S_in;
        int k = 0;
        for (int m = 0; m < S_in; ++m) {
            const T t = ti[m];
            if (!(t < INF)) break;
            while (k < cnt && to[k] <= t) ++k;     // first output spike after t
            if (k == cnt) break;                   // later inputs reach no output spike
            acc += exp_(t / tau_s) * G1[post * S + k] - exp_(t / tau) * G2[post * S + k];
        }
    }
    part[tid] = acc;
}

// 4. dL/dt_in. One thread per (sample b, input i), i fastest: w[n, i] reads are coalesced.
template <typename T>
__device__ void input_grad(const T* __restrict__ w, const T* __restrict__ t_in,
                           const T* __restrict__ t_out, const int* __restrict__ counts,
                           const T* __restrict__ G1, const T* __restrict__ G2, long long B, int N,
                           int N_in, int S_in, int S, T tau_s, T* gx) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= B * N_in) return;
    const long long b = tid / N_in;
    const int i = (int)(tid - b * N_in);
    const T tau = 2 * tau_s;
    const T INF = (T)1.0 / (T)0.0;
    const T* ti = t_in + tid * S_in;
    for (int m = 0; m < S_in; ++m) {
        const T t = ti[m];
        if (!(t < INF)) { gx[tid * S_in + m] = 0; continue; }
        T g1 = 0, g2 = 0;
        for (int n = 0; n < N; ++n) {
            const long long post = b * N + n;
            const int cnt = counts[post];
            const T* to = t_out + post * S;
            int lo = 0, hi = cnt;                  // binary search: first k with t_k > t
            while (lo < hi) { const int mid = (lo + hi) >> 1; if (to[mid] <= t) lo = mid + 1; else hi = mid; }
            if (lo == cnt) continue;
            const T wn = w[(long long)n * N_in + i];
            g1 += wn * G1[post * S + lo];
            g2 += wn * G2[post * S + lo];
        }
        gx[tid * S_in + m] = g1 * exp_(t / tau_s) / tau_s - g2 * exp_(t / tau) / tau;
    }
}

#define BATS_BACKWARD(SFX, T)                                                                      \
extern "C" __global__ void bats_spike_factors_##SFX(const T* t_cont, const T* x, const int* counts, \
    const T* grad, long long BN, int S, T tau, T c, T r, T guard, T* G1, T* G2) {                  \
    spike_factors<T>(t_cont, x, counts, grad, BN, S, tau, c, r, guard, G1, G2);                    \
}                                                                                                  \
extern "C" __global__ void bats_weight_grad_##SFX(const T* t_in, const T* t_out, const int* counts,\
    const T* G1, const T* G2, int B, int N, int N_in, int S_in, int S, int n_chunks, T tau_s,       \
    T* part) {                                                                                     \
    weight_grad<T>(t_in, t_out, counts, G1, G2, B, N, N_in, S_in, S, n_chunks, tau_s, part);        \
}                                                                                                  \
extern "C" __global__ void bats_input_grad_##SFX(const T* w, const T* t_in, const T* t_out,        \
    const int* counts, const T* G1, const T* G2, long long B, int N, int N_in, int S_in, int S,     \
    T tau_s, T* gx) {                                                                              \
    input_grad<T>(w, t_in, t_out, counts, G1, G2, B, N, N_in, S_in, S, tau_s, gx);                 \
}
BATS_BACKWARD(f32, float)
BATS_BACKWARD(f64, double)
