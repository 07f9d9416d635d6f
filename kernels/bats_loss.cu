// BATS spike-count loss, fused: one thread per (sample, neuron, slot).
// Twin: snnkit/bats/losses.py::SpikeCountLoss._numpy (same names).
//
//   n = counts + overflow,  err = target - n  (target_true for the label's neuron, else target_false)
//   grad[b,n,k] = err / B on stored slots k < counts, 0 on padding
//   sq[b,n]     = err^2 / (2 B)          (written by slot 0; the launcher sums it to the loss)
//
// ``overflow`` may be a dummy pointer when has_overflow == 0 (SpikeTrains without overflow).
// One launch replaces about ten small CuPy ops, and nothing here needs the host: the loss stays a
// device scalar until the caller asks for its value. Labels were range-checked by the launcher.

template <typename T>
__device__ void count_loss(const int* __restrict__ counts, const int* __restrict__ overflow,
                           int has_overflow, const long long* __restrict__ labels, long long B, int N, int S,
                           T target_true, T target_false, T* grad, T* sq) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= B * N * S) return;
    const long long bn = tid / S;            // (sample, neuron)
    const int k = (int)(tid - bn * S);
    const long long b = bn / N;
    const int n = (int)(bn - b * N);
    const int c = counts[bn];
    const T n_spikes = (T)(c + (has_overflow ? overflow[bn] : 0));
    const T err = (labels[b] == n ? target_true : target_false) - n_spikes;
    grad[tid] = k < c ? err / (T)B : (T)0;
    if (k == 0) sq[bn] = (T)0.5 * err * err / (T)B;
}

#define BATS_LOSS(SFX, T)                                                                          \
extern "C" __global__ void bats_count_loss_##SFX(const int* counts, const int* overflow,            \
    int has_overflow, const long long* labels, long long B, int N, int S, T tt, T tf, T* grad,      \
    T* sq) {                                                                                        \
    count_loss<T>(counts, overflow, has_overflow, labels, B, N, S, tt, tf, grad, sq); }
BATS_LOSS(f32, float)
BATS_LOSS(f64, double)
