// tdBN (threshold-dependent batch norm). Twin: snnkit/stbp/tdbn.py (channel_means, fold_stats, affine,
// channel_grad_means, backward_dx).
// Data are channels-last [R, C] (R = T*B*H*W): per-channel statistics are column sums.
// A block is 32 channels (threadIdx.x, consecutive addresses: coalesced) x 8 row lanes
// (threadIdx.y); blockIdx.y picks a chunk of rows. Each block writes one partial sum per channel,
// then tdbn_reduce_chunks adds the chunks in a fixed order (deterministic, no atomics).
#define TILE_C 32
#define TILE_R 8

template <typename F>
__device__ F block_column_sum(F v, F (*sh)[TILE_C]) {
    sh[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    F s = 0;
    if (threadIdx.y == 0)
        for (int r = 0; r < TILE_R; ++r) s += sh[r][threadIdx.x];
    __syncthreads();
    return s;
}

// sum over the chunk's rows of x (squared = 0) or of (x - mean)^2 (squared = 1)
template <typename F>
__device__ void partial_sums(const F* __restrict__ x, const F* __restrict__ mean, long long R, int C,
                             long long rows, int squared, F* __restrict__ part) {
    __shared__ F sh[TILE_R][TILE_C];
    const int c = blockIdx.x * TILE_C + threadIdx.x;
    const long long r0 = (long long)blockIdx.y * rows;
    const long long r1 = min(r0 + rows, R);
    F acc = 0;
    if (c < C) {
        const F m = squared ? mean[c] : F(0);
        for (long long r = r0 + threadIdx.y; r < r1; r += TILE_R) {
            const F v = x[r * C + c];
            acc += squared ? (v - m) * (v - m) : v;
        }
    }
    const F s = block_column_sum<F>(acc, sh);
    if (threadIdx.y == 0 && c < C) part[(long long)blockIdx.y * C + c] = s;
}

// (sum g, sum g * x^) over the chunk's rows, x^ = (x - mean) * invstd
template <typename F>
__device__ void partial_grad_sums(const F* __restrict__ g, const F* __restrict__ x, const F* __restrict__ mean,
                                  const F* __restrict__ invstd, long long R, int C, long long rows,
                                  F* __restrict__ part_g, F* __restrict__ part_gx) {
    __shared__ F sh[TILE_R][TILE_C];
    const int c = blockIdx.x * TILE_C + threadIdx.x;
    const long long r0 = (long long)blockIdx.y * rows;
    const long long r1 = min(r0 + rows, R);
    F acc_g = 0, acc_gx = 0;
    if (c < C) {
        const F m = mean[c], is = invstd[c];
        for (long long r = r0 + threadIdx.y; r < r1; r += TILE_R) {
            const F gv = g[r * C + c];
            acc_g += gv;
            acc_gx += gv * ((x[r * C + c] - m) * is);
        }
    }
    const F sg = block_column_sum<F>(acc_g, sh);
    const F sgx = block_column_sum<F>(acc_gx, sh);
    if (threadIdx.y == 0 && c < C) {
        part_g[(long long)blockIdx.y * C + c] = sg;
        part_gx[(long long)blockIdx.y * C + c] = sgx;
    }
}

// out[c] = mul * sum over chunks (mul = 1/R turns sums into means)
template <typename F>
__device__ void reduce_chunks(const F* __restrict__ part, int n_chunks, int C, F mul, F* __restrict__ out) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    F s = 0;
    for (int k = 0; k < n_chunks; ++k) s += part[(long long)k * C + c];
    out[c] = s * mul;
}

// per channel: invstd = 1/sqrt(var + eps), a = gamma scale invstd, b = beta - mean a, and
// (update) running_mean/var <- (1 - m) running + m (mean, var * unbias)
template <typename F>
__device__ void fold(const F* __restrict__ mean, const F* __restrict__ var, const F* __restrict__ gamma,
                     const F* __restrict__ beta, F scale, F eps, int update, F momentum, F unbias,
                     F* running_mean, F* running_var, F* __restrict__ invstd, F* __restrict__ a,
                     F* __restrict__ b, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const F is = F(1) / sqrt(var[c] + eps);
    const F ac = gamma[c] * (scale * is);
    invstd[c] = is;
    a[c] = ac;
    b[c] = beta[c] - mean[c] * ac;
    if (update) {
        running_mean[c] = running_mean[c] * (F(1) - momentum) + momentum * mean[c];
        running_var[c] = running_var[c] * (F(1) - momentum) + momentum * var[c] * unbias;
    }
}

// the channel of flat element i; 32-bit division when the array allows (much cheaper than 64-bit)
__device__ __forceinline__ int channel_of(long long i, long long n, int C) {
    return n < 2147483647LL ? (int)((unsigned)i % (unsigned)C) : (int)(i % C);
}

// y = x * a[c] + b[c]
template <typename F>
__device__ void affine(const F* __restrict__ x, const F* __restrict__ a, const F* __restrict__ b,
                       F* __restrict__ y, long long n, int C) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int c = channel_of(i, n, C);
    y[i] = x[i] * a[c] + b[c];
}

// dx = a [g - mean(g) - x^ mean(g x^)]   (eval mode: statistics are constants, dx = a g)
template <typename F>
__device__ void backward_dx(const F* __restrict__ g, const F* __restrict__ x, const F* __restrict__ mean,
                            const F* __restrict__ invstd, const F* __restrict__ a, const F* __restrict__ mean_g,
                            const F* __restrict__ mean_gx, int batch_statistics, F* __restrict__ dx,
                            long long n, int C) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int c = channel_of(i, n, C);
    if (!batch_statistics) { dx[i] = a[c] * g[i]; return; }
    const F xhat = (x[i] - mean[c]) * invstd[c];
    dx[i] = a[c] * (g[i] - mean_g[c] - xhat * mean_gx[c]);
}

#define STBP_TDBN_INSTANTIATE(F, S)                                                                   \
extern "C" __global__ void tdbn_partial_sums_##S(const F* x, const F* mean, long long R, int C,       \
                                                 long long rows, int squared, F* part) {              \
    partial_sums<F>(x, mean, R, C, rows, squared, part); }                                            \
extern "C" __global__ void tdbn_partial_grad_sums_##S(const F* g, const F* x, const F* mean,          \
        const F* invstd, long long R, int C, long long rows, F* part_g, F* part_gx) {                 \
    partial_grad_sums<F>(g, x, mean, invstd, R, C, rows, part_g, part_gx); }                          \
extern "C" __global__ void tdbn_reduce_chunks_##S(const F* part, int n_chunks, int C, F mul, F* out) { \
    reduce_chunks<F>(part, n_chunks, C, mul, out); }                                                  \
extern "C" __global__ void tdbn_fold_##S(const F* mean, const F* var, const F* gamma, const F* beta,  \
        F scale, F eps, int update, F momentum, F unbias, F* running_mean, F* running_var,            \
        F* invstd, F* a, F* b, int C) {                                                               \
    fold<F>(mean, var, gamma, beta, scale, eps, update, momentum, unbias, running_mean, running_var,  \
            invstd, a, b, C); }                                                                       \
extern "C" __global__ void tdbn_affine_##S(const F* x, const F* a, const F* b, F* y,                 \
                                           long long n, int C) {                                      \
    affine<F>(x, a, b, y, n, C); }                                                                    \
extern "C" __global__ void tdbn_backward_dx_##S(const F* g, const F* x, const F* mean,                \
        const F* invstd, const F* a, const F* mean_g, const F* mean_gx, int batch_statistics, F* dx,  \
        long long n, int C) {                                                                         \
    backward_dx<F>(g, x, mean, invstd, a, mean_g, mean_gx, batch_statistics, dx, n, C); }

STBP_TDBN_INSTANTIATE(float, f32)
STBP_TDBN_INSTANTIATE(double, f64)
