// S3GD dense backward through time, fused (one thread per neuron of one sample, reverse time loop).
// Twin: snnkit/s3gd/lif.py::lif_delta_dense (s3gd_lif_backward_dense):
//     g[t] = (dL/dS[t] + r) * sigma'(V[t] - threshold) [* 1(|V - threshold| < band)]
//     d[t] = g[t] + beta d[t+1]                        (the reset is detached: no -S' term)
// d = dL/dh is then used by two GEMMs in Python: dW = S_in^T d, dL/dS_in = d W^T.
// r[b, j] is a time-constant addition to dL/dS (the activity regularizer's gradient), fused here
// so that the dense path does not allocate a second [B, T, N] array for it.
// sigma' is s3gd_fast_sigmoid_grad of s3gd_common.cuh (fast sigmoid). band < 0 means "no truncation".
// s3gd_scan_backward (twin: snnkit/s3gd/scan.py::scan_backward) is the adjoint of the linear filter y[t] = a y[t-1] + c x[t]:
//     e[t] = gy[t] + a e[t+1],  dL/dx[t] = c e[t].
// s3gd_readout_grad is that adjoint for the readout, with dL/dout built in the same loop (twin:
// snnkit/s3gd/readout.py::LeakyReadout.backward): dL/dout[t] = dL/dlogits at t = t_max (max mode) or at every t (sum mode).
// s3gd_reg_grad (twin: snnkit/s3gd/loss.py::ActivityRegularizer.grad_from_counts), one block per sample.
// Both exist to save launches: the sparse backward is bound by them, not by bytes.
// s3gd_readout_weight_partial + s3gd_sum_partials: the readout's dW = S^T e (twin:
// snnkit/s3gd/readout.py::LeakyReadout.weight_grad) without cuBLAS, which CuPy will not record into a CUDA graph (graph.py).
// f32/f64 as everywhere in kernels/: template __device__ functions, extern "C" wrappers
// <name>_f32 / <name>_f64 made by S3GD_DENSE_BACKWARD at the end.
// Block sizes shared with snnkit/s3gd/cuda.py come from there as -D options (cuda.DEFINES).
#if !defined(S3GD_REG_BLOCK) || !defined(S3GD_RW_ROWS) || !defined(S3GD_RW_C)
#error "compile with the -D options of snnkit.s3gd.cuda.DEFINES (launch through snnkit.kernels.function)"
#endif
#include "s3gd_common.cuh"       // s3gd_fast_sigmoid_grad, s3gd_in_band, s3gd_column, s3gd_scan

template <typename real>
__device__ void lif_backward_dense(const real* __restrict__ grad_s, const real* __restrict__ V,
                                   const real* __restrict__ r, real* __restrict__ delta,
                                   const real beta, const real threshold, const real scale,
                                   const real band, const int B, const int T, const int N) {
    long long col, base;
    if (!s3gd_column(B, T, N, &col, &base)) return;
    const real rj = r[col];
    real d = 0;
    #pragma unroll 8          // lets the compiler issue several steps' loads ahead (ILP)
    for (int t = T - 1; t >= 0; --t) {
        const long long k = base + (long long)t * N;
        real sg = s3gd_fast_sigmoid_grad(V[k], threshold, scale);
        if (band >= 0 && !s3gd_in_band(V[k], threshold, band)) sg = 0;
        d = (grad_s[k] + rj) * sg + beta * d;
        delta[k] = d;
    }
}

// grad_logits, t_max [B, C]; e [B, T, C]; sum_mode: t_max unused (may be any valid pointer).
template <typename real>
__device__ void readout_grad(const real* __restrict__ grad_logits, const long long* __restrict__ t_max,
                             real* __restrict__ e, const real a, const real c, const int sum_mode,
                             const int B, const int T, const int C) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)B * C) return;
    long long b = col / C, k = col % C;
    const real gl = grad_logits[col];
    const int tm = sum_mode ? -1 : (int)t_max[col];
    real acc = 0;
    for (int t = T - 1; t >= 0; --t) {
        const real gout = (sum_mode || t == tm) ? gl : real(0);
        acc = gout + a * acc;
        e[(b * T + t) * C + k] = c * acc;
    }
}

// counts c [B, N] (spikes per neuron); r [B, N] = dL/dc. Block b (S3GD_REG_BLOCK threads, a power
// of two: the tree reduction halves it) sums its row, then writes it.
template <typename real>
__device__ void reg_grad(const real* __restrict__ counts, real* __restrict__ r, const real f_up,
                         const real f_low, const real up_coef, const real low_coef, const int N) {
    __shared__ real s_sum[S3GD_REG_BLOCK];
    const real* cb = counts + (long long)blockIdx.x * N;
    real part = 0;
    for (int j = threadIdx.x; j < N; j += S3GD_REG_BLOCK) part += cb[j];
    s_sum[threadIdx.x] = part;
    __syncthreads();
    for (int step = S3GD_REG_BLOCK / 2; step > 0; step >>= 1) {
        if (threadIdx.x < step) s_sum[threadIdx.x] += s_sum[threadIdx.x + step];
        __syncthreads();
    }
    const real up = s_sum[0] / (real)N - f_up > 0 ? up_coef : real(0);
    for (int j = threadIdx.x; j < N; j += S3GD_REG_BLOCK) {
        const real short_of = f_low - cb[j];
        r[(long long)blockIdx.x * N + j] = up + low_coef * (short_of > 0 ? short_of : real(0));
    }
}

// dW[j, c] = sum_r s[r, j] e[r, c] over the rows r = (b, t) of s [R, N] and e [R, C]. The readout's
// input is a spike raster, mostly zeros, so a thread skips the C products of every silent entry.
// Block: 32 neurons j (blockIdx.x: neighbouring blocks read the rest of the same rows of s, together;
// tx: a coalesced row segment) x S3GD_RW_ROWS row lanes (ty), one slice of rows (blockIdx.y), one
// tile of S3GD_RW_C classes (blockIdx.z). Each block writes its slice's
// sums to partial[slice, j, c]; s3gd_sum_partials adds the slices in a fixed order: deterministic,
// no atomics.
#define S3GD_RW_LOADS 8       // rows a thread loads before using any of them (CUDA-only tuning)
template <typename real>
__device__ void readout_weight_partial(const real* __restrict__ s, const real* __restrict__ e,
                                       real* __restrict__ partial, const long long R, const int N,
                                       const int C, const long long rows_per_block) {
    __shared__ real s_red[S3GD_RW_ROWS][32];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int j = blockIdx.x * 32 + tx;
    const int c0 = blockIdx.z * S3GD_RW_C, nc = min(S3GD_RW_C, C - c0);
    const long long r0 = (long long)blockIdx.y * rows_per_block, r1 = min(R, r0 + rows_per_block);
    real acc[S3GD_RW_C];
    #pragma unroll
    for (int c = 0; c < S3GD_RW_C; ++c) acc[c] = 0;
    if (j < N) {
        for (long long r = r0 + ty; r < r1; r += S3GD_RW_ROWS * S3GD_RW_LOADS) {
            real sv[S3GD_RW_LOADS];                       // loaded first: all in flight together
            #pragma unroll
            for (int u = 0; u < S3GD_RW_LOADS; ++u) {
                const long long ru = r + u * S3GD_RW_ROWS;
                sv[u] = ru < r1 ? s[ru * N + j] : real(0);
            }
            #pragma unroll
            for (int u = 0; u < S3GD_RW_LOADS; ++u)
                if (sv[u] != real(0)) {
                    const real* er = e + (r + u * S3GD_RW_ROWS) * C + c0;
                    #pragma unroll                        // constant bound: acc stays in registers
                    for (int c = 0; c < S3GD_RW_C; ++c)
                        if (c < nc) acc[c] += sv[u] * er[c];
                }
        }
    }
    #pragma unroll
    for (int c = 0; c < S3GD_RW_C; ++c) {
        if (c < nc) {                                     // the same for the whole block
            s_red[ty][tx] = acc[c];
            __syncthreads();
            if (ty == 0 && j < N) {
                real sum = 0;
                for (int k = 0; k < S3GD_RW_ROWS; ++k) sum += s_red[k][tx];
                partial[((long long)blockIdx.y * N + j) * C + c0 + c] = sum;
            }
            __syncthreads();
        }
    }
}

// out[i] = sum_k partial[k, i], k = 0 .. n_split - 1 in order.
template <typename real>
__device__ void sum_partials(const real* __restrict__ partial, real* __restrict__ out,
                             const int n_split, const long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    real acc = 0;
    for (int k = 0; k < n_split; ++k) acc += partial[(long long)k * n + i];
    out[i] = acc;
}

#define S3GD_DENSE_BACKWARD(real, SFX)                                                             \
extern "C" __global__ void s3gd_lif_backward_dense_##SFX(const real* grad_s, const real* V,       \
    const real* r, real* delta, const real beta, const real threshold, const real scale,            \
    const real band, const int B, const int T, const int N) {                                       \
    lif_backward_dense<real>(grad_s, V, r, delta, beta, threshold, scale, band, B, T, N); }         \
extern "C" __global__ void s3gd_scan_backward_##SFX(const real* gy, real* gx, const real a,        \
    const real c, const int B, const int T, const int N) {                                          \
    s3gd_scan<real, true>(gy, gx, a, c, B, T, N); }                                                   \
extern "C" __global__ void s3gd_readout_grad_##SFX(const real* grad_logits, const long long* t_max,\
    real* e, const real a, const real c, const int sum_mode, const int B, const int T,              \
    const int C) {                                                                                  \
    readout_grad<real>(grad_logits, t_max, e, a, c, sum_mode, B, T, C); }                           \
extern "C" __global__ void s3gd_reg_grad_##SFX(const real* counts, real* r, const real f_up,       \
    const real f_low, const real up_coef, const real low_coef, const int N) {                       \
    reg_grad<real>(counts, r, f_up, f_low, up_coef, low_coef, N); }                                 \
extern "C" __global__ void s3gd_readout_weight_partial_##SFX(const real* s, const real* e,         \
    real* partial, const long long R, const int N, const int C, const long long rows_per_block) {   \
    readout_weight_partial<real>(s, e, partial, R, N, C, rows_per_block); }                         \
extern "C" __global__ void s3gd_sum_partials_##SFX(const real* partial, real* out, const int n_split,\
    const long long n) {                                                                            \
    sum_partials<real>(partial, out, n_split, n); }
S3GD_DENSE_BACKWARD(float, f32)
S3GD_DENSE_BACKWARD(double, f64)
