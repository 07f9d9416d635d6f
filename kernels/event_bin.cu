// Binning a batch of event samples into a raster [B, T, C] on the device.
// Twin: snnkit/datasets/events.py::bin_batch (the cells come from snnkit/datasets/events.py::EventData.cells).
//
// The set is a CSR uploaded once by EventBinner.prepare: offsets[n + 1] (int64) and, per event in
// the window, its cell q = floor(t / dt) * C + channel (int32); events after the window are not
// there at all. Row b of the batch is sample s = rows[b] (a negative index counts from the end,
// as in NumPy): out[b, q] for every event of s, into a raster the caller zeroed.
// Grid (B, blocks per row): blockIdx.x is the batch row, its blocks' threads stride over the
// sample's events (consecutive events, consecutive threads: coalesced reads of cells).
// binary: every event of a cell stores the same 1, so the races between them are harmless;
// count: atomicAdd of 1 -- sums of ones are exact in floating point (up to 2^24 per cell in
// float32) whatever the order, so the raster is bit for bit the host's np.add.at.
template <typename F>
__device__ void event_bin(const long long* __restrict__ offsets, const int* __restrict__ cells,
                          const long long* __restrict__ rows, long long n_samples, long long cells_per_row,
                          int count, F* __restrict__ out) {
    long long s = rows[blockIdx.x];
    if (s < 0) s += n_samples;
    if (s < 0 || s >= n_samples) return;   // never read outside the set (callers pass valid rows)
    const long long first = offsets[s], last = offsets[s + 1];
    F* row = out + (long long)blockIdx.x * cells_per_row;
    for (long long e = first + (long long)blockIdx.y * blockDim.x + threadIdx.x; e < last;
         e += (long long)gridDim.y * blockDim.x) {
        if (count) atomicAdd(row + cells[e], F(1));
        else row[cells[e]] = F(1);
    }
}

#define EVENT_BIN_KERNELS(F, SFX)                                                                         \
extern "C" __global__ void event_bin_##SFX(const long long* offsets, const int* cells, const long long* rows,\
                                           long long n_samples, long long cells_per_row, int count, F* out) { \
    event_bin<F>(offsets, cells, rows, n_samples, cells_per_row, count, out);                             \
}
EVENT_BIN_KERNELS(float, f32)
EVENT_BIN_KERNELS(double, f64)
