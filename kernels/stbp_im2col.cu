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

#define STBP_IM2COL(SFX, F)                                                                        \
extern "C" __global__ void im2col_##SFX(const F* x, F* col, int N, int H, int W, int C, int Ho,     \
    int Wo, int k, int s, int p) { im2col<F>(x, col, N, H, W, C, Ho, Wo, k, s, p); }                \
extern "C" __global__ void col2im_##SFX(const F* dcol, F* dx, int N, int H, int W, int C, int Ho,   \
    int Wo, int k, int s, int p) { col2im<F>(dcol, dx, N, H, W, C, Ho, Wo, k, s, p); }
STBP_IM2COL(f32, float)
STBP_IM2COL(f64, double)
