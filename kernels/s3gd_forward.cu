// S3GD forward: the LIF time loop, fused (one thread walks one neuron of one sample through time).
// Twin: snnkit/s3gd/lif.py::lif_simulate (s3gd_lif_forward), line for line:
//     V[t] = beta V[t-1] + h[t] - S[t-1]        S[t] = H(V[t] - threshold)
// s3gd_scan_forward: the linear leaky filter y[t] = a y[t-1] + c x[t] (s3gd_scan in
// s3gd_common.cuh; twin: snnkit/s3gd/scan.py::scan_forward), for the input trace and the readout.
// Layout [B, T, N] (N fastest): at every step the threads of a warp read consecutive neurons, so the
// loads are coalesced without a time-major copy. Grids grow with B*N: no batch cap.
// Compiled with --fmad=false so that every product and sum is rounded like NumPy's: spikes agree
// bit for bit with the twin on the same currents h.
// f32/f64 as everywhere in kernels/: template __device__ functions, extern "C" wrappers
// <name>_f32 / <name>_f64 made by S3GD_FORWARD at the end (snnkit.kernels.function picks one).
#include "s3gd_common.cuh"       // s3gd_column, s3gd_scan

template <typename real>
__device__ void lif_forward(const real* __restrict__ h, real* __restrict__ V, real* __restrict__ S,
                            const real beta, const real threshold, const int B, const int T,
                            const int N) {
    long long col, base;
    if (!s3gd_column(B, T, N, &col, &base)) return;
    real v = 0, s = 0;
    #pragma unroll 8          // lets the compiler issue several steps' loads ahead (ILP)
    for (int t = 0; t < T; ++t) {
        const long long k = base + (long long)t * N;
        v = beta * v + h[k] - s;               // the reset subtracts the previous spike
        s = (v - threshold >= 0) ? real(1) : real(0);
        V[k] = v;
        S[k] = s;
    }
}

#define S3GD_FORWARD(real, SFX)                                                                    \
extern "C" __global__ void s3gd_lif_forward_##SFX(const real* h, real* V, real* S, const real beta, \
    const real threshold, const int B, const int T, const int N) {                                  \
    lif_forward<real>(h, V, S, beta, threshold, B, T, N); }                                         \
extern "C" __global__ void s3gd_scan_forward_##SFX(const real* x, real* y, const real a,           \
    const real c, const int B, const int T, const int N) {                                          \
    s3gd_scan<real, false>(x, y, a, c, B, T, N); }
S3GD_FORWARD(float, f32)
S3GD_FORWARD(double, f64)
