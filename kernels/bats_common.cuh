// Device helpers shared by the BATS kernels (bats_forward.cu, bats_backward.cu): written once here.
#pragma once

// exp/sqrt/log of the kernel's float type: expf/sqrtf/logf for float (the double versions would
// promote every float kernel to double precision), exp/sqrt/log for double.
template <typename T> __device__ __forceinline__ T exp_(T v);
template <> __device__ __forceinline__ float exp_<float>(float v) { return expf(v); }
template <> __device__ __forceinline__ double exp_<double>(double v) { return exp(v); }
template <typename T> __device__ __forceinline__ T sqrt_(T v);
template <> __device__ __forceinline__ float sqrt_<float>(float v) { return sqrtf(v); }
template <> __device__ __forceinline__ double sqrt_<double>(double v) { return sqrt(v); }
template <typename T> __device__ __forceinline__ T log_(T v);
template <> __device__ __forceinline__ float log_<float>(float v) { return logf(v); }
template <> __device__ __forceinline__ double log_<double>(double v) { return log(v); }

// Next grid point strictly after t. Twin: snnkit/bats/neuron.py::grid_up (see its docstring for
// why): t/dt within BATS_GRID_TOL of an integer counts as on the grid, and the result is
// index * dt, so equal grid times are bit-identical in both twins. BATS_GRID_TOL is
// snnkit.bats.neuron.GRID_TOL, passed by the launchers as -DBATS_GRID_TOL (KERNEL_DEFINES).
#ifndef BATS_GRID_TOL
#error "compile with -DBATS_GRID_TOL=<snnkit.bats.neuron.GRID_TOL>: launch through snnkit.kernels.function(..., defines=snnkit.bats.neuron.KERNEL_DEFINES)"
#endif
template <typename T> __device__ __forceinline__ T grid_up_(T t, T dt) {
    const T steps = t / dt;
    const T nearest = rint(steps);
    const T index = (fabs(steps - nearest) <= T(BATS_GRID_TOL) ? nearest : floor(steps)) + T(1);
    return index * dt;
}
