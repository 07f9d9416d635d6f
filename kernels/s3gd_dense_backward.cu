// S3GD dense backward through time, fused (one thread per neuron of one sample, reverse time loop).
// Mirrors snnkit/s3gd/backward.py::dense_delta:
//     g[t] = (dL/dS[t] + r) * sigma'(V[t] - threshold) [* 1(|V - threshold| < band)]
//     d[t] = g[t] + beta d[t+1]                        (the reset is detached: no -S' term)
// d = dL/dh is then used by two GEMMs in Python: dW = S_in^T d, dL/dS_in = d W^T.
// r[b, j] is a time-constant addition to dL/dS (the activity regularizer's gradient), fused here
// so that the dense path does not allocate a second [B, T, N] array for it.
// sigma'(x) = 1 / (scale |x| + 1)^2 (fast sigmoid). band < 0 means "no truncation".
// s3gd_scan_backward is the adjoint of the linear filter y[t] = a y[t-1] + c x[t]:
//     e[t] = gy[t] + a e[t+1],  dL/dx[t] = c e[t].
#ifndef REAL
#define REAL float
#endif
typedef REAL real;

extern "C" __global__ void s3gd_lif_backward_dense(const real* __restrict__ grad_s,
                                                   const real* __restrict__ V,
                                                   const real* __restrict__ r,
                                                   real* __restrict__ delta, const real beta,
                                                   const real threshold, const real scale,
                                                   const real band, const int B, const int T,
                                                   const int N) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)B * N) return;
    long long b = col / N, j = col % N;
    const real rj = r[col];
    real d = 0;
    #pragma unroll 8          // lets the compiler issue several steps' loads ahead (ILP)
    for (int t = T - 1; t >= 0; --t) {
        long long k = (b * T + t) * N + j;
        real x = V[k] - threshold;
        real ax = x < 0 ? -x : x;
        real den = scale * ax + real(1);
        real sg = real(1) / (den * den);
        if (band >= 0 && !(ax < band)) sg = 0;
        d = (grad_s[k] + rj) * sg + beta * d;
        delta[k] = d;
    }
}

extern "C" __global__ void s3gd_scan_backward(const real* __restrict__ gy, real* __restrict__ gx,
                                              const real a, const real c, const int B, const int T,
                                              const int N) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)B * N) return;
    long long b = col / N, j = col % N;
    real e = 0;
    #pragma unroll 8          // lets the compiler issue several steps' loads ahead (ILP)
    for (int t = T - 1; t >= 0; --t) {
        long long k = (b * T + t) * N + j;
        e = gy[k] + a * e;
        gx[k] = c * e;
    }
}
