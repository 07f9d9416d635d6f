// Fused multi-step LIF (STBP). Twin: snnkit/stbp/lif.py (lif_forward_reference, lif_backward_reference),
// line for line.
// Layout: time-major [T, M]; each thread owns STBP_V consecutive neurons and loops over time, so at
// each step the threads of a warp touch consecutive addresses (coalesced). STBP_T (the number of
// steps) is a compile-time constant: the backward keeps u[0..T-1] in registers instead of memory.
// STBP_V (neurons per thread, snnkit/stbp/lif.py::_per_thread picks it): at small T a thread has
// only T loads per array to keep in flight, too few bytes per SM to cover the memory latency at
// full bandwidth; with STBP_V neurons it loads them as one STBP_V-wide vector (16 bytes at T <= 2),
// when the launcher says every row start is aligned to it (``aligned``), else one by one. With
// STBP_V = 1 only the vector path is compiled (a one-element pack is always aligned and in range):
// a second, dead copy of the body changed the compiler's schedule of the first (87 instead of ~125
// registers at T = 32, fewer loads in flight) and cost 20-45% of the bandwidth at T >= 4 (measured).
// compile-options: -DSTBP_T=4 -DSTBP_V=4
//
//   u[t] = tau * u[t-1] * (1 - o[t-1]) + x[t]        o[t] = (u[t] >= Vth)
//   dL/do[t] = G[t] - tau * u[t] * delta[t+1]        (reset path, unless detach_reset)
//   delta[t] = dL/do[t] * h(u[t]) + tau * (1 - o[t]) * delta[t+1],   h = 1[|u - Vth| < aa] / (2 aa)
#ifndef STBP_T
#error "compile with -DSTBP_T=<number of time steps>"
#endif
#ifndef STBP_V
#error "compile with -DSTBP_V=<neurons per thread> (snnkit/stbp/lif.py::_per_thread)"
#endif
#define V STBP_V

template <typename F> struct alignas(sizeof(F) * V) Pack { F v[V]; };

// p[i .. i+V-1] (zeros past M): one vector load when VEC, else V scalar loads. VEC is a template
// argument, decided once per thread, so that the body has no branch around its loads and the
// compiler can issue every time step's loads before the first store.
template <typename F, bool VEC>
__device__ __forceinline__ void load_pack(const F* __restrict__ p, long long i, long long M, F (&r)[V]) {
    if (VEC) {
        const Pack<F> q = *reinterpret_cast<const Pack<F>*>(p + i);
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = q.v[k];
    } else {
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = i + k < M ? p[i + k] : F(0);
    }
}

template <typename F, bool VEC>
__device__ __forceinline__ void store_pack(F* p, long long i, long long M, const F (&r)[V]) {
    if (VEC) {
        Pack<F> q;
#pragma unroll
        for (int k = 0; k < V; ++k) q.v[k] = r[k];
        *reinterpret_cast<Pack<F>*>(p + i) = q;
    } else {
#pragma unroll
        for (int k = 0; k < V; ++k) if (i + k < M) p[i + k] = r[k];
    }
}

// one step of the forward recurrence for each of a thread's V neurons (forward, and the backward's
// recomputation of u, which must round the same)
template <typename F>
__device__ __forceinline__ void lif_step(F (&u)[V], F (&o_prev)[V], const F (&xt)[V], F tau, F vth) {
#pragma unroll
    for (int k = 0; k < V; ++k) {
        u[k] = tau * u[k] * (F(1) - o_prev[k]) + xt[k];
        o_prev[k] = u[k] >= vth ? F(1) : F(0);
    }
}

template <typename F, bool VEC>
__device__ __forceinline__ void lif_forward_pack(const F* __restrict__ x, F* __restrict__ o, long long i,
                                                 long long M, F tau, F vth) {
    F u[V], o_prev[V];
#pragma unroll
    for (int k = 0; k < V; ++k) u[k] = o_prev[k] = 0;
    #pragma unroll 4
    for (int t = 0; t < STBP_T; ++t) {
        F xt[V];
        load_pack<F, VEC>(x + t * M, i, M, xt);
        lif_step<F>(u, o_prev, xt, tau, vth);
        store_pack<F, VEC>(o + t * M, i, M, o_prev);
    }
}

template <typename F>
__device__ void lif_forward(const F* __restrict__ x, F* __restrict__ o, long long M, F tau, F vth, int aligned) {
    const long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= M) return;
    if (V == 1 || (aligned && i + V <= M)) lif_forward_pack<F, true>(x, o, i, M, tau, vth);
    else lif_forward_pack<F, false>(x, o, i, M, tau, vth);
}

template <typename F, bool VEC>
__device__ __forceinline__ void lif_backward_pack(const F* __restrict__ x, const F* __restrict__ grad_o,
                                                  F* __restrict__ grad_x, long long i, long long M, F tau, F vth,
                                                  F aa, int detach_reset) {
    // recompute u from x: cheaper than storing it (one read of x instead of a write + a read of u)
    F u_all[STBP_T][V];
    F u[V], o_prev[V];
#pragma unroll
    for (int k = 0; k < V; ++k) u[k] = o_prev[k] = 0;
    #pragma unroll
    for (int t = 0; t < STBP_T; ++t) {
        F xt[V];
        load_pack<F, VEC>(x + t * M, i, M, xt);
        lif_step<F>(u, o_prev, xt, tau, vth);
#pragma unroll
        for (int k = 0; k < V; ++k) u_all[t][k] = u[k];
    }
    const F h_height = F(1) / (F(2) * aa);
    F delta[V];                                         // delta[t+1]
#pragma unroll
    for (int k = 0; k < V; ++k) delta[k] = 0;
    #pragma unroll
    for (int t = STBP_T - 1; t >= 0; --t) {
        F g[V];
        load_pack<F, VEC>(grad_o + t * M, i, M, g);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const F ut = u_all[t][k];
            const F ot = ut >= vth ? F(1) : F(0);
            if (!detach_reset) g[k] -= tau * ut * delta[k];
            const F h = fabs(ut - vth) < aa ? h_height : F(0);
            delta[k] = g[k] * h + tau * (F(1) - ot) * delta[k];
        }
        store_pack<F, VEC>(grad_x + t * M, i, M, delta);
    }
}

template <typename F>
__device__ void lif_backward(const F* __restrict__ x, const F* __restrict__ grad_o,
                             F* __restrict__ grad_x, long long M, F tau, F vth, F aa, int detach_reset,
                             int aligned) {
    const long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= M) return;
    if (V == 1 || (aligned && i + V <= M)) lif_backward_pack<F, true>(x, grad_o, grad_x, i, M, tau, vth, aa, detach_reset);
    else lif_backward_pack<F, false>(x, grad_o, grad_x, i, M, tau, vth, aa, detach_reset);
}

// ---- tdBN's apply fused with the LIF that follows it. Twin: snnkit/stbp/fused.py
// (norm_lif_forward_reference, norm_lif_backward_reference): the existing twins composed.
// The LIF input is y[t, i] = x[t, i] * a[c] + b[c] (+ r[t, i] where a residual branch adds),
// c = i % C (channels last); one pass reads x (and r) and writes o, where the unfused layers
// read x, write y, read y, write o. y is recomputed in the backward, never stored.
__device__ __forceinline__ int lif_channel_of(long long i, long long M, int C) {
    return M < 2147483647LL ? (int)((unsigned)i % (unsigned)C) : (int)(i % C);
}

template <typename F>
__device__ void norm_lif_forward(const F* __restrict__ x, const F* __restrict__ a, const F* __restrict__ b,
                                 const F* __restrict__ r, int has_r, F* __restrict__ o, long long M, int C,
                                 F tau, F vth) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M) return;
    const int c = lif_channel_of(i, M, C);
    const F ac = a[c], bc = b[c];
    F u = 0, o_prev = 0;
    #pragma unroll 4
    for (int t = 0; t < STBP_T; ++t) {
        F y = x[t * M + i] * ac + bc;                  // no FMA (--fmad=false): rounds as x * a + b in NumPy
        if (has_r) y = y + r[t * M + i];
        u = tau * u * (F(1) - o_prev) + y;
        o_prev = u >= vth ? F(1) : F(0);
        o[t * M + i] = o_prev;
    }
}

// The LIF backward of norm_lif_forward, writing grad_y = dL/dy, and in the same pass the per-chunk
// partial sums of tdBN's backward: sum g and sum g * x^ (x^ = (x - mean) invstd) per channel,
// over the rows of the chunk and over t. The layout is stbp_tdbn.cu's: a block is 32 channels
// (threadIdx.x) x 8 row lanes (threadIdx.y); a row is one pixel (M / C of them per step);
// blockIdx.y picks a chunk of rows; tdbn_reduce_chunks then adds the chunks in a fixed order.
#define NL_TILE_C 32
#define NL_TILE_R 8
template <typename F>
__device__ void norm_lif_backward(const F* __restrict__ x, const F* __restrict__ a, const F* __restrict__ b,
                                  const F* __restrict__ r, int has_r, const F* __restrict__ grad_o,
                                  const F* __restrict__ mean, const F* __restrict__ invstd,
                                  F* __restrict__ grad_y, F* __restrict__ part_g, F* __restrict__ part_gx,
                                  long long M, int C, long long rows, F tau, F vth, F aa, int detach_reset) {
    __shared__ F sh[NL_TILE_R][NL_TILE_C];
    const int c = blockIdx.x * NL_TILE_C + threadIdx.x;
    const long long R = M / C;                          // pixels per step
    const long long r0 = (long long)blockIdx.y * rows;
    const long long r1 = min(r0 + rows, R);
    F acc_g = 0, acc_gx = 0;
    if (c < C) {
        const F ac = a[c], bc = b[c], m = mean[c], is = invstd[c];
        const F h_height = F(1) / (F(2) * aa);
        for (long long row = r0 + threadIdx.y; row < r1; row += NL_TILE_R) {
            const long long i = row * C + c;
            F u_all[STBP_T], x_all[STBP_T];
            F u = 0, o_prev = 0;
            #pragma unroll
            for (int t = 0; t < STBP_T; ++t) {
                const F xv = x[t * M + i];
                F y = xv * ac + bc;
                if (has_r) y = y + r[t * M + i];
                u = tau * u * (F(1) - o_prev) + y;
                o_prev = u >= vth ? F(1) : F(0);
                u_all[t] = u;
                x_all[t] = xv;
            }
            F delta = 0;
            #pragma unroll
            for (int t = STBP_T - 1; t >= 0; --t) {
                const F ut = u_all[t];
                const F ot = ut >= vth ? F(1) : F(0);
                F g = grad_o[t * M + i];
                if (!detach_reset) g -= tau * ut * delta;
                const F h = fabs(ut - vth) < aa ? h_height : F(0);
                delta = g * h + tau * (F(1) - ot) * delta;
                grad_y[t * M + i] = delta;
                acc_g += delta;
                acc_gx += delta * ((x_all[t] - m) * is);
            }
        }
    }
    sh[threadIdx.y][threadIdx.x] = acc_g;
    __syncthreads();
    F sg = 0;
    if (threadIdx.y == 0)
        for (int k = 0; k < NL_TILE_R; ++k) sg += sh[k][threadIdx.x];
    __syncthreads();
    sh[threadIdx.y][threadIdx.x] = acc_gx;
    __syncthreads();
    F sgx = 0;
    if (threadIdx.y == 0)
        for (int k = 0; k < NL_TILE_R; ++k) sgx += sh[k][threadIdx.x];
    if (threadIdx.y == 0 && c < C) {
        part_g[(long long)blockIdx.y * C + c] = sg;
        part_gx[(long long)blockIdx.y * C + c] = sgx;
    }
}

#define STBP_LIF(SFX, F)                                                                           \
extern "C" __global__ void lif_forward_##SFX(const F* x, F* o, long long M, F tau, F vth, int aligned) { \
    lif_forward<F>(x, o, M, tau, vth, aligned); }                                                   \
extern "C" __global__ void lif_backward_##SFX(const F* x, const F* grad_o, F* grad_x, long long M,  \
    F tau, F vth, F aa, int detach_reset, int aligned) {                                            \
    lif_backward<F>(x, grad_o, grad_x, M, tau, vth, aa, detach_reset, aligned); }                   \
extern "C" __global__ void norm_lif_forward_##SFX(const F* x, const F* a, const F* b, const F* r,     \
    int has_r, F* o, long long M, int C, F tau, F vth) {                                            \
    norm_lif_forward<F>(x, a, b, r, has_r, o, M, C, tau, vth); }                                    \
extern "C" __global__ void norm_lif_backward_##SFX(const F* x, const F* a, const F* b, const F* r,    \
    int has_r, const F* grad_o, const F* mean, const F* invstd, F* grad_y, F* part_g, F* part_gx,   \
    long long M, int C, long long rows, F tau, F vth, F aa, int detach_reset) {                     \
    norm_lif_backward<F>(x, a, b, r, has_r, grad_o, mean, invstd, grad_y, part_g, part_gx, M, C,    \
                         rows, tau, vth, aa, detach_reset); }
STBP_LIF(f32, float)
STBP_LIF(f64, double)
