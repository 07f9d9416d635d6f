// Fused multi-step LIF (STBP). Twin: snnkit/stbp/lif.py (lif_forward_reference, lif_backward_reference),
// line for line.
// Layout: time-major [T, M]; thread i owns neuron i and loops over time, so at each step the
// threads of a warp touch consecutive addresses (coalesced). STBP_T (the number of steps) is a
// compile-time constant: the backward keeps u[0..T-1] in registers instead of memory.
// compile-options: -DSTBP_T=4
//
//   u[t] = tau * u[t-1] * (1 - o[t-1]) + x[t]        o[t] = (u[t] >= Vth)
//   dL/do[t] = G[t] - tau * u[t] * delta[t+1]        (reset path, unless detach_reset)
//   delta[t] = dL/do[t] * h(u[t]) + tau * (1 - o[t]) * delta[t+1],   h = 1[|u - Vth| < aa] / (2 aa)
#ifndef STBP_T
#error "compile with -DSTBP_T=<number of time steps>"
#endif

template <typename F>
__device__ void lif_forward(const F* __restrict__ x, F* __restrict__ o, long long M, F tau, F vth) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M) return;
    F u = 0, o_prev = 0;
    #pragma unroll 4
    for (int t = 0; t < STBP_T; ++t) {
        u = tau * u * (F(1) - o_prev) + x[t * M + i];
        o_prev = u >= vth ? F(1) : F(0);
        o[t * M + i] = o_prev;
    }
}

template <typename F>
__device__ void lif_backward(const F* __restrict__ x, const F* __restrict__ grad_o,
                             F* __restrict__ grad_x, long long M, F tau, F vth, F aa, int detach_reset) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M) return;
    // recompute u from x: cheaper than storing it (one read of x instead of a write + a read of u)
    F u_all[STBP_T];
    F u = 0, o_prev = 0;
    #pragma unroll
    for (int t = 0; t < STBP_T; ++t) {
        u = tau * u * (F(1) - o_prev) + x[t * M + i];
        o_prev = u >= vth ? F(1) : F(0);
        u_all[t] = u;
    }
    const F h_height = F(1) / (F(2) * aa);
    F delta = 0;                                        // delta[t+1]
    #pragma unroll
    for (int t = STBP_T - 1; t >= 0; --t) {
        const F ut = u_all[t];
        const F ot = ut >= vth ? F(1) : F(0);
        F g = grad_o[t * M + i];
        if (!detach_reset) g -= tau * ut * delta;
        const F h = fabs(ut - vth) < aa ? h_height : F(0);
        delta = g * h + tau * (F(1) - ot) * delta;
        grad_x[t * M + i] = delta;
    }
}

#define STBP_LIF(SFX, F)                                                                           \
extern "C" __global__ void lif_forward_##SFX(const F* x, F* o, long long M, F tau, F vth) {          \
    lif_forward<F>(x, o, M, tau, vth); }                                                            \
extern "C" __global__ void lif_backward_##SFX(const F* x, const F* grad_o, F* grad_x, long long M,  \
    F tau, F vth, F aa, int detach_reset) {                                                         \
    lif_backward<F>(x, grad_o, grad_x, M, tau, vth, aa, detach_reset); }
STBP_LIF(f32, float)
STBP_LIF(f64, double)
