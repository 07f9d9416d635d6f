// im2col / col2im for channels-last frames, mirroring snnkit/stbp/conv.py.
//   col[(n, i, j), (a, b, c)] = x[n, i*s + a - p, j*s + b - p, c]   (0 outside the image)
// One thread per output element; c is the fastest index on both sides, so a warp reads and writes
// consecutive addresses. col2im is the gather form: each input element sums the <= k*k column
// entries it was copied to, so no two threads write the same address (no atomics, deterministic).
// Indices are 32-bit (integer division is cheap then): the launchers keep col under 2^31 elements
// by chunking frames (snnkit.stbp.conv).

template <typename F>
__device__ void im2col(const F* __restrict__ x, F* __restrict__ col, int N, int H, int W, int C,
                       int Ho, int Wo, int k, int s, int p) {
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * Ho * Wo * k * k * C) return;
    int r = idx;
    const int c = r % C; r /= C;
    const int b = r % k; r /= k;
    const int a = r % k; r /= k;
    const int j = r % Wo; r /= Wo;
    const int i = r % Ho;
    const int n = r / Ho;
    const int h = i * s + a - p, w = j * s + b - p;
    col[idx] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * H + h) * W + w) * C + c] : F(0);
}

template <typename F>
__device__ void col2im(const F* __restrict__ dcol, F* __restrict__ dx, int N, int H, int W, int C,
                       int Ho, int Wo, int k, int s, int p) {
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * H * W * C) return;
    int r = idx;
    const int c = r % C; r /= C;
    const int w = r % W; r /= W;
    const int h = r % H;
    const int n = r / H;
    F acc = 0;
    for (int a = 0; a < k; ++a) {
        const int hi = h + p - a;                 // = i * s for the output row i that used (h, a)
        if (hi < 0 || hi % s != 0) continue;
        const int i = hi / s;
        if (i >= Ho) continue;
        for (int b = 0; b < k; ++b) {
            const int wj = w + p - b;
            if (wj < 0 || wj % s != 0) continue;
            const int j = wj / s;
            if (j >= Wo) continue;
            acc += dcol[(((n * Ho + i) * Wo + j) * k * k + a * k + b) * C + c];
        }
    }
    dx[idx] = acc;
}

extern "C" __global__ void im2col_f32(const float* x, float* col, int N, int H, int W, int C, int Ho, int Wo,
                                      int k, int s, int p) { im2col<float>(x, col, N, H, W, C, Ho, Wo, k, s, p); }
extern "C" __global__ void im2col_f64(const double* x, double* col, int N, int H, int W, int C, int Ho, int Wo,
                                      int k, int s, int p) { im2col<double>(x, col, N, H, W, C, Ho, Wo, k, s, p); }
extern "C" __global__ void col2im_f32(const float* dcol, float* dx, int N, int H, int W, int C, int Ho, int Wo,
                                      int k, int s, int p) { col2im<float>(dcol, dx, N, H, W, C, Ho, Wo, k, s, p); }
extern "C" __global__ void col2im_f64(const double* dcol, double* dx, int N, int H, int W, int C, int Ho, int Wo,
                                      int k, int s, int p) { col2im<double>(dcol, dx, N, H, W, C, Ho, Wo, k, s, p); }
