// im2col / col2im for channels-last frames. Twin: snnkit/stbp/conv.py (im2col_reference, col2im_reference).
//   col[(n, i, j), (a, b, c)] = x[n, i*s + a - p, j*s + b - p, c]   (0 outside the image)
// One block per pixel, its threads along the channels: c is the fastest index on both sides, so a
// warp reads and writes consecutive addresses, and the pixel's (n, i, j) is decoded once per thread,
// not once per element (integer division would otherwise cost more than the memory traffic).
// col2im is the gather form: each input element sums the <= k*k column entries it was copied to, so
// no two threads write the same address (no atomics, deterministic). The launchers keep col under
// 2^31 elements by chunking frames (snnkit.stbp.conv), so pixel indices fit in 32 bits.

template <typename F>
__device__ void im2col(const F* __restrict__ x, F* __restrict__ col, int N, int H, int W, int C,
                       int Ho, int Wo, int k, int s, int p) {
    const int row = blockIdx.x;                          // one block per output pixel (n, i, j)
    const int j = row % Wo, i = (row / Wo) % Ho, n = row / (Wo * Ho);
    F* out = col + (long long)row * k * k * C;
    for (int a = 0; a < k; ++a) {
        const int h = i * s + a - p;
        for (int b = 0; b < k; ++b) {
            const int w = j * s + b - p;
            const bool inside = h >= 0 && h < H && w >= 0 && w < W;
            const F* src = x + ((long long)(n * H + h) * W + w) * C;      // read only when inside
            F* dst = out + (a * k + b) * C;
            for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = inside ? src[c] : F(0);
        }
    }
}

template <typename F>
__device__ void col2im(const F* __restrict__ dcol, F* __restrict__ dx, int N, int H, int W, int C,
                       int Ho, int Wo, int k, int s, int p) {
    const int pix = blockIdx.x;                          // one block per input pixel (n, h, w)
    const int w = pix % W, h = (pix / W) % H, n = pix / (W * H);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        F acc = 0;
        for (int a = 0; a < k; ++a) {
            const int hi = h + p - a;                    // = i * s for the output row i that used (h, a)
            if (hi < 0 || hi % s != 0 || hi / s >= Ho) continue;
            for (int b = 0; b < k; ++b) {
                const int wj = w + p - b;
                if (wj < 0 || wj % s != 0 || wj / s >= Wo) continue;
                acc += dcol[(((long long)(n * Ho + hi / s) * Wo + wj / s) * k * k + a * k + b) * C + c];
            }
        }
        dx[(long long)pix * C + c] = acc;
    }
}

// ---- vectorized versions (same results, bit for bit): 16-byte loads and stores (float4 / double2)
// when C is a multiple of the vector width and the arrays are 16-byte aligned (the launchers check).
// One thread per (output pixel, a, b, vector of channels) for im2col and per (input pixel, vector)
// for col2im, on a flat 1-D grid: the one-block-per-pixel kernels above start N*Ho*Wo blocks of
// C threads doing 4-byte accesses, and measured at 2-3x the copy time of the bytes they move
// (benchmarks/RESULTS.md, STBP round 2). col2im adds in the same (a, b) order: the same sums.
template <typename F> struct Vec16;
template <> struct Vec16<float> { typedef float4 T; enum { n = 4 };
    __device__ static T zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
    __device__ static void add(T& a, const T& b) { a.x += b.x; a.y += b.y; a.z += b.z; a.w += b.w; } };
template <> struct Vec16<double> { typedef double2 T; enum { n = 2 };
    __device__ static T zero() { return make_double2(0.0, 0.0); }
    __device__ static void add(T& a, const T& b) { a.x += b.x; a.y += b.y; } };

template <typename F>
__device__ void im2col_vec(const F* __restrict__ x, F* __restrict__ col, int N, int H, int W, int C,
                           int Ho, int Wo, int k, int s, int p) {
    typedef typename Vec16<F>::T V;
    const int Cv = C / Vec16<F>::n;
    const long long total = (long long)N * Ho * Wo * k * k * Cv;
    const long long item = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (item >= total) return;
    const int cv = (int)(item % Cv);
    const long long t = item / Cv;                       // (row, a, b)
    const int ab = (int)(t % (k * k));
    const int row = (int)(t / (k * k));
    const int a = ab / k, b = ab % k;
    const int j = row % Wo, i = (row / Wo) % Ho, n = row / (Wo * Ho);
    const int h = i * s + a - p, w = j * s + b - p;
    V v = Vec16<F>::zero();
    if (h >= 0 && h < H && w >= 0 && w < W)
        v = reinterpret_cast<const V*>(x + ((long long)(n * H + h) * W + w) * C)[cv];
    reinterpret_cast<V*>(col + t * C)[cv] = v;
}

template <typename F>
__device__ void col2im_vec(const F* __restrict__ dcol, F* __restrict__ dx, int N, int H, int W, int C,
                           int Ho, int Wo, int k, int s, int p) {
    typedef typename Vec16<F>::T V;
    const int Cv = C / Vec16<F>::n;
    const long long total = (long long)N * H * W * Cv;
    const long long item = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (item >= total) return;
    const int cv = (int)(item % Cv);
    const int pix = (int)(item / Cv);
    const int w = pix % W, h = (pix / W) % H, n = pix / (W * H);
    V acc = Vec16<F>::zero();
    for (int a = 0; a < k; ++a) {
        const int hi = h + p - a;
        if (hi < 0 || hi % s != 0 || hi / s >= Ho) continue;
        for (int b = 0; b < k; ++b) {
            const int wj = w + p - b;
            if (wj < 0 || wj % s != 0 || wj / s >= Wo) continue;
            const long long r = ((long long)(n * Ho + hi / s) * Wo + wj / s) * k * k + a * k + b;
            Vec16<F>::add(acc, reinterpret_cast<const V*>(dcol + r * C)[cv]);
        }
    }
    reinterpret_cast<V*>(dx + (long long)pix * C)[cv] = acc;
}

#define STBP_IM2COL(SFX, F)                                                                        \
extern "C" __global__ void im2col_##SFX(const F* x, F* col, int N, int H, int W, int C, int Ho,     \
    int Wo, int k, int s, int p) { im2col<F>(x, col, N, H, W, C, Ho, Wo, k, s, p); }                \
extern "C" __global__ void col2im_##SFX(const F* dcol, F* dx, int N, int H, int W, int C, int Ho,   \
    int Wo, int k, int s, int p) { col2im<F>(dcol, dx, N, H, W, C, Ho, Wo, k, s, p); }                \
extern "C" __global__ void im2col_vec_##SFX(const F* x, F* col, int N, int H, int W, int C, int Ho, \
    int Wo, int k, int s, int p) { im2col_vec<F>(x, col, N, H, W, C, Ho, Wo, k, s, p); }            \
extern "C" __global__ void col2im_vec_##SFX(const F* dcol, F* dx, int N, int H, int W, int C, int Ho,\
    int Wo, int k, int s, int p) { col2im_vec<F>(dcol, dx, N, H, W, C, Ho, Wo, k, s, p); }
STBP_IM2COL(f32, float)
STBP_IM2COL(f64, double)
