// The S3GD formulas that several kernels use, each written once (s3gd_dense_backward.cu and
// s3gd_sparse_backward.cu include this header), beside a pointer to its one NumPy twin.
// To change the surrogate, edit s3gd_fast_sigmoid_grad here and its twin
// snnkit/s3gd/neuron.py::fast_sigmoid_grad: every S3GD path (dense, sparse, NumPy, CUDA) follows.
#pragma once

// The time loops of S3GD give one thread one (sample b, neuron j) column of a [B, T, N] array
// (N fastest: a warp reads consecutive neurons at every step, coalesced). Its element at step t
// is base + t * N. False for the threads past the last column (grids are whole blocks).
__device__ __forceinline__ bool s3gd_column(const int B, const int T, const int N, long long* col,
                                            long long* base) {
    *col = (long long)blockIdx.x * blockDim.x + threadIdx.x;     // = b * N + j
    if (*col >= (long long)B * N) return false;
    *base = (*col / N) * T * N + *col % N;                        // (b, 0, j)
    return true;
}

// sigma'(V - threshold) = 1 / (scale |V - threshold| + 1)^2, the fast-sigmoid surrogate of dS/dV.
// Twin: snnkit/s3gd/neuron.py::fast_sigmoid_grad
template <typename real>
__device__ __forceinline__ real s3gd_fast_sigmoid_grad(real v, real threshold, real scale) {
    const real x = v - threshold;
    const real den = scale * (x < 0 ? -x : x) + real(1);
    return real(1) / (den * den);
}

// The active band |V - threshold| < delta (the sparse backward's set; the dense backward's
// truncation when truncate=True). Twin: snnkit/s3gd/neuron.py::in_band
template <typename real>
__device__ __forceinline__ bool s3gd_in_band(real v, real threshold, real delta) {
    const real x = v - threshold;
    return (x < 0 ? -x : x) < delta;
}

// The linear leaky filter y[t] = a y[t-1] + c x[t] (adjoint = false; twin:
// snnkit/s3gd/scan.py::scan_forward) and its adjoint in reverse time, e[t] = x[t] + a e[t+1],
// y[t] = c e[t] (adjoint = true; twin: snnkit/s3gd/scan.py::scan_backward), along axis 1 of
// x [B, T, N]: the input trace (a = beta, c = 1) and the readout (a = beta_r, c = 1 - beta_r).
template <typename real, bool adjoint>
__device__ void s3gd_scan(const real* __restrict__ x, real* __restrict__ y, const real a,
                          const real c, const int B, const int T, const int N) {
    long long col, base;
    if (!s3gd_column(B, T, N, &col, &base)) return;
    real acc = 0;
    #pragma unroll 8          // lets the compiler issue several steps' loads ahead (ILP)
    for (int step = 0; step < T; ++step) {
        const long long k = base + (long long)(adjoint ? T - 1 - step : step) * N;
        if (adjoint) {
            acc = x[k] + a * acc;
            y[k] = c * acc;
        } else {
            acc = a * acc + c * x[k];
            y[k] = acc;
        }
    }
}
