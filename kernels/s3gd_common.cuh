// The S3GD formulas that several kernels use, each written once (s3gd_dense_backward.cu and
// s3gd_sparse_backward.cu include this header), beside a pointer to its one NumPy twin.
// To change the surrogate, edit s3gd_fast_sigmoid_grad here and its twin
// snnkit/s3gd/neuron.py::fast_sigmoid_grad: every S3GD path (dense, sparse, NumPy, CUDA) follows.
#pragma once

// sigma'(V - threshold) = 1 / (scale |V - threshold| + 1)^2, the fast-sigmoid surrogate of dS/dV.
// Twin: snnkit/s3gd/neuron.py::fast_sigmoid_grad
template <typename real>
__device__ __forceinline__ real s3gd_fast_sigmoid_grad(real v, real threshold, real scale) {
    const real x = v - threshold;
    const real den = scale * (x < 0 ? -x : x) + real(1);
    return real(1) / (den * den);
}

// The active band |V - threshold| < delta (the sparse backward's set; the dense backward's
// truncation when truncate=True). Twin: snnkit/s3gd/neuron.py::in_band
template <typename real>
__device__ __forceinline__ bool s3gd_in_band(real v, real threshold, real delta) {
    const real x = v - threshold;
    return (x < 0 ? -x : x) < delta;
}
