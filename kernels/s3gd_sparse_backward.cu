// S3GD sparse backward: gradient only through the active set A = {(b,t,j) : |V - threshold| < delta}.
// Mirrors snnkit/s3gd/sparse.py. Four kernels, none of which touches a dense [B, T, N] gradient:
//
// 1. s3gd_active_count  one thread per (b, j): how many steps of neuron j in sample b are active.
// 2. (exclusive scan of the counts in Python -> offsets[b*N + j], CSR over (b, j))
// 3. s3gd_active_fill   one thread per (b, j): writes the entries (b, t, j, V) of its segment, t
//                       ascending. Entries are thus grouped by sample, then neuron, then time.
// 4. s3gd_sparse_weight_grad   dW[i, j] = sum_{e in A, j_e = j} g_e tr[b_e, t_e, i]
//                       tr is the input trace tr[t] = beta tr[t-1] + S_in[t] (saved by the forward).
//                       Thread (i, j), i fastest, so a warp reads one contiguous trace row per entry;
//                       the loop over b visits the (b, j) segments: no atomics, deterministic.
// 5. s3gd_sparse_input_grad    dL/dS_in at the entries q = (b, k, i) that the layer below needs
//                       (its own active set): sum over this layer's entries e of sample b with
//                       t_e >= k of beta^(t_e - k) g_e W[i, j_e]. One thread per q; the cost is
//                       |A_below| x |A_this| / B, i.e. it shrinks with the square of the activity.
// pw[n] = beta^n is precomputed on the host, so no thread ever indexes before t = 0.
#ifndef REAL
#define REAL float
#endif
typedef REAL real;

__device__ __forceinline__ bool s3gd_in_band(real v, real threshold, real delta) {
    real x = v - threshold;
    return (x < 0 ? -x : x) < delta;
}

extern "C" __global__ void s3gd_active_count(const real* __restrict__ V, int* __restrict__ count,
                                             const real threshold, const real delta, const int B,
                                             const int T, const int N) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)B * N) return;
    long long b = col / N, j = col % N;
    int c = 0;
    for (int t = 0; t < T; ++t) c += s3gd_in_band(V[(b * T + t) * N + j], threshold, delta);
    count[col] = c;
}

extern "C" __global__ void s3gd_active_fill(const real* __restrict__ V,
                                            const long long* __restrict__ offsets,
                                            int* __restrict__ eb, int* __restrict__ et,
                                            int* __restrict__ ej, real* __restrict__ ev,
                                            const real threshold, const real delta, const int B,
                                            const int T, const int N) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)B * N) return;
    long long b = col / N, j = col % N;
    long long e = offsets[col];
    for (int t = 0; t < T; ++t) {
        real v = V[(b * T + t) * N + j];
        if (s3gd_in_band(v, threshold, delta)) {
            eb[e] = (int)b; et[e] = t; ej[e] = (int)j; ev[e] = v;
            ++e;
        }
    }
}

extern "C" __global__ void s3gd_sparse_weight_grad(const real* __restrict__ g,
                                                   const int* __restrict__ et,
                                                   const long long* __restrict__ offsets,
                                                   const real* __restrict__ trace,
                                                   real* __restrict__ dW, const int B, const int T,
                                                   const int N_in, const int N) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int j = blockIdx.y;                               // gridDim.y = N <= 65535
    if (i >= N_in) return;
    real acc = 0;
    for (int b = 0; b < B; ++b) {
        long long s = offsets[(long long)b * N + j], stop = offsets[(long long)b * N + j + 1];
        for (long long e = s; e < stop; ++e)
            acc += g[e] * trace[((long long)b * T + et[e]) * N_in + i];
    }
    dW[(long long)i * N + j] = acc;
}

extern "C" __global__ void s3gd_sparse_input_grad(const real* __restrict__ g,
                                                  const int* __restrict__ et,
                                                  const int* __restrict__ ej,
                                                  const long long* __restrict__ offsets,
                                                  const int* __restrict__ qb,
                                                  const int* __restrict__ qt,
                                                  const int* __restrict__ qi,
                                                  const real* __restrict__ W,
                                                  const real* __restrict__ pw,
                                                  real* __restrict__ out, const long long n_q,
                                                  const int N) {
    long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= n_q) return;
    const long long b = qb[q];
    const int k = qt[q];
    const real* Wi = W + (long long)qi[q] * N;
    real acc = 0;
    for (long long e = offsets[b * N], stop = offsets[(b + 1) * N]; e < stop; ++e) {
        int t = et[e];
        if (t >= k) acc += pw[t - k] * g[e] * Wi[ej[e]];
    }
    out[q] = acc;
}
