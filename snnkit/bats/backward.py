"""Exact backward of a dense BATS layer: errors on output spike times -> dL/dw and dL/dt_in.

Notation as in ``neuron.py``; ``e_k = dL/dt_k`` for the output spikes k of one neuron (0 on padding).
Implicit differentiation of ``c z^2 - b z + a = 0`` at the earliest root (``2cz - b = -x``) gives

    dt_k/da = f1_k = tau / (x_k z_k)          dt_k/db = -f2_k = -tau / x_k

1. Reset recurrence. Spike j lowers ``b`` of every later spike k by ``(delta_theta/tau) z_j``, so
   ``dt_k/dt_j = (delta_theta/tau) z_j / x_k`` and, in reverse order over the neuron's spikes,

       e^_j = e_j + z_j (delta_theta/tau) sum_{k>j} e^_k / x_k

2. Suffix sums over the neuron's spikes (``spike_factors``):

       G1_k = sum_{k' >= k} e^_k' f1_k'          G2_k = sum_{k' >= k} e^_k' f2_k'

   An input spike at ``t`` reaches exactly the output spikes after it, i.e. the suffix from the first
   k with ``t_k > t``; call those sums ``G1(t)``, ``G2(t)`` (0 when no output spike follows).
3. Weight gradient (``weight_grad``), a merge of sorted pre- and post-synaptic times:

       dL/dw_{n,i} = sum_b sum_m [ exp(t_i^m/tau_s) G1_n(t_i^m) - exp(t_i^m/tau) G2_n(t_i^m) ]

4. Error to the pre-synaptic spike times (``input_grad``):

       dL/dt_i^m = sum_n w_{n,i} [ G1_n(t_i^m) exp(t_i^m/tau_s)/tau_s - G2_n(t_i^m) exp(t_i^m/tau)/tau ]

Output times enter as the continuous ``t_cont`` and input times as ``in_used`` (what the forward
used), so with ``dt`` the rounding acts as the identity. ``x`` is guarded (``neuron.X_GUARD``) where a
trajectory grazes threshold. Nothing of size B x N_in x N_out is stored: the CUDA kernels
(``kernels/bats_backward.cu``) give one thread to each (neuron, input) pair for dW (summing a chunk
of the batch, chunks added afterwards) and to each (sample, input) for dt_in; the NumPy twins loop
over input slots with the batch in chunks.

    spike_factors(t_cont, x, counts, grad_times, tau_s, theta, delta_theta) -> (G1, G2)  [B, N_out, S]
    weight_grad(in_used, t_cont, counts, G1, G2, tau_s)               -> [N_out, N_in]
    input_grad(weight, in_used, t_cont, counts, G1, G2, tau_s)        -> [B, N_in, S_in]
    backward(weight, sim, grad_times, tau_s, theta, delta_theta=None, need_input_grad=True)
        -> (dL/dw, dL/dt_in or None)
"""
from __future__ import annotations

import numpy as np

from ..backend import is_cupy_array, xp_of
from .neuron import KERNEL_DEFINES, X_GUARD

__all__ = ["backward", "spike_factors", "weight_grad", "input_grad"]


def backward(weight, sim, grad_times, tau_s, theta, delta_theta=None, need_input_grad=True):
    """dL/dw [N_out, N_in] and dL/dt_in [B, N_in, S_in] (None unless ``need_input_grad``)."""
    delta_theta = theta if delta_theta is None else delta_theta
    xp = xp_of(weight)
    if tuple(grad_times.shape) != tuple(sim.t_cont.shape):
        raise ValueError(f"grad_times must have the output's shape {tuple(sim.t_cont.shape)} "
                         f"(batch, neurons, slots); got {tuple(grad_times.shape)}")
    grad_times = xp.asarray(grad_times, dtype=weight.dtype)
    G1, G2 = spike_factors(sim.t_cont, sim.x, sim.counts, grad_times, tau_s, theta, delta_theta)
    dw = weight_grad(sim.in_used, sim.t_cont, sim.counts, G1, G2, tau_s)
    dx = input_grad(weight, sim.in_used, sim.t_cont, sim.counts, G1, G2, tau_s) if need_input_grad else None
    return dw, dx


# --- 1 + 2: per neuron ---------------------------------------------------------------------------
def spike_factors(t_cont, x, counts, grad_times, tau_s, theta, delta_theta):
    """Suffix sums ``G1, G2`` [B, N, S] of ``e^ f1`` and ``e^ f2`` (0 on padding slots)."""
    if is_cupy_array(t_cont):
        return _spike_factors_cuda(t_cont, x, counts, grad_times, tau_s, theta, delta_theta)
    tau = 2.0 * tau_s
    c, r = theta / tau, delta_theta / tau
    B, N, S = t_cont.shape
    G1 = np.zeros_like(t_cont)
    G2 = np.zeros_like(t_cont)
    acc = np.zeros((B, N), t_cont.dtype)                # sum_{k > j} e^_k / x_k
    s1 = np.zeros((B, N), t_cont.dtype)
    s2 = np.zeros((B, N), t_cont.dtype)
    for k in range(S - 1, -1, -1):
        valid = k < counts
        z = np.exp(np.where(valid, t_cont[:, :, k], 0) / tau)
        xg = np.maximum(x[:, :, k], X_GUARD * c * z)    # grazing guard
        eh = np.where(valid, grad_times[:, :, k] + z * r * acc, 0)
        acc += eh / xg
        s1 += eh * tau / (xg * z)
        s2 += eh * tau / xg
        G1[:, :, k] = s1
        G2[:, :, k] = s2
    return G1, G2


# --- 3 + 4: per (pre, post) pair -----------------------------------------------------------------
def _suffix_at(t_in_m, t_cont, counts, G):
    """``G_n(t)`` for every (sample, neuron, input): [b, N_out, N_in] for input slot times ``t_in_m`` [b, N_in]."""
    # first k with t_k > t  ==  number of output spikes with t_k <= t (outputs are sorted)
    pos = (t_cont[:, :, None, :] <= t_in_m[:, None, :, None]).sum(axis=3)
    Gext = np.concatenate([G, np.zeros(G.shape[:2] + (1,), G.dtype)], axis=2)
    return np.take_along_axis(Gext, pos.reshape(pos.shape[0], pos.shape[1], -1), axis=2)


# Entries (floats) of one chunk's temporaries in the NumPy backward: 4 Mi entries = 32 MiB in
# float64. The batch is split so that the [chunk, N, N_in, S] intermediates never exceed it, which
# keeps a large batch from allocating gigabytes on a laptop; the result does not depend on it.
CHUNK_ENTRIES = 1 << 22


def _batch_chunks(B, per_sample, budget=CHUNK_ENTRIES):
    step = max(1, budget // max(per_sample, 1))
    return [slice(s, min(B, s + step)) for s in range(0, B, step)]


def _slot_exps(t, tau_s):
    """exp(t/tau_s) and exp(t/tau) of one input slot (0 where there is no spike); None, None when
    the slot is empty everywhere (nothing to add)."""
    fin = np.isfinite(t)
    if not fin.any():
        return None, None
    safe = np.where(fin, t, 0)
    return np.where(fin, np.exp(safe / tau_s), 0), np.where(fin, np.exp(safe / (2 * tau_s)), 0)


def _per_input_slot(in_used, t_cont, counts, G1, G2, tau_s):
    """What steps 3 and 4 share: for each chunk ``sl`` of the batch and each input slot ``m`` that
    holds a spike somewhere, ``(sl, m, exp(t/tau_s), exp(t/tau), G1(t), G2(t))`` with ``t`` the
    slot's times [b, N_in] and the suffix sums [b, N_out, N_in] at them."""
    B, N_in, S_in = in_used.shape
    N, S = t_cont.shape[1:]
    for sl in _batch_chunks(B, N * N_in * S):
        for m in range(S_in):
            t = in_used[sl, :, m]
            ea, eb = _slot_exps(t, tau_s)
            if ea is None:
                continue
            yield (sl, m, ea, eb, _suffix_at(t, t_cont[sl], counts[sl], G1[sl]),
                   _suffix_at(t, t_cont[sl], counts[sl], G2[sl]))


def weight_grad(in_used, t_cont, counts, G1, G2, tau_s):
    """dL/dw [N_out, N_in], summed over the batch."""
    if is_cupy_array(t_cont):
        return _weight_grad_cuda(in_used, t_cont, counts, G1, G2, tau_s)
    dw = np.zeros((t_cont.shape[1], in_used.shape[1]), t_cont.dtype)
    for _, _, ea, eb, g1, g2 in _per_input_slot(in_used, t_cont, counts, G1, G2, tau_s):
        dw += np.einsum("bni,bi->ni", g1, ea) - np.einsum("bni,bi->ni", g2, eb)
    return dw


def input_grad(weight, in_used, t_cont, counts, G1, G2, tau_s):
    """dL/dt_in [B, N_in, S_in] (0 on padding slots)."""
    if is_cupy_array(t_cont):
        return _input_grad_cuda(weight, in_used, t_cont, counts, G1, G2, tau_s)
    gx = np.zeros(in_used.shape, t_cont.dtype)
    for sl, m, ea, eb, g1, g2 in _per_input_slot(in_used, t_cont, counts, G1, G2, tau_s):
        gx[sl, :, m] = (np.einsum("ni,bni->bi", weight, g1) * ea / tau_s
                        - np.einsum("ni,bni->bi", weight, g2) * eb / (2 * tau_s))
    return gx


# --- CUDA launchers ------------------------------------------------------------------------------
def _spike_factors_cuda(t_cont, x, counts, grad_times, tau_s, theta, delta_theta):
    import cupy as cp
    from ..kernels import function, launch_1d
    f = t_cont.dtype.type
    B, N, S = t_cont.shape
    tau = 2.0 * tau_s
    G1 = cp.empty_like(t_cont)
    G2 = cp.empty_like(t_cont)
    kern = function("bats_backward.cu", "bats_spike_factors", t_cont.dtype, KERNEL_DEFINES)
    launch_1d(kern, B * N, (cp.ascontiguousarray(t_cont), cp.ascontiguousarray(x), cp.ascontiguousarray(counts),
                            cp.ascontiguousarray(grad_times), np.int64(B * N), np.int32(S), f(tau),
                            f(theta / tau), f(delta_theta / tau), f(X_GUARD), G1, G2))
    return G1, G2


def _weight_grad_cuda(in_used, t_cont, counts, G1, G2, tau_s):
    import cupy as cp
    from ..kernels import function, launch_1d
    f = t_cont.dtype.type
    B, N_in, S_in = in_used.shape
    N, S = t_cont.shape[1:]
    # enough (chunk, n, i) threads to fill the GPU even when N_out * N_in is small
    n_chunks = int(min(B, max(1, -(-(1 << 17) // (N * N_in)))))
    part = cp.empty((n_chunks, N, N_in), t_cont.dtype)
    kern = function("bats_backward.cu", "bats_weight_grad", t_cont.dtype, KERNEL_DEFINES)
    launch_1d(kern, n_chunks * N * N_in, (cp.ascontiguousarray(in_used), cp.ascontiguousarray(t_cont),
                                          cp.ascontiguousarray(counts), G1, G2, np.int32(B), np.int32(N),
                                          np.int32(N_in), np.int32(S_in), np.int32(S), np.int32(n_chunks),
                                          f(tau_s), part))
    return part[0] if n_chunks == 1 else part.sum(axis=0)


def _input_grad_cuda(weight, in_used, t_cont, counts, G1, G2, tau_s):
    import cupy as cp
    from ..kernels import function, launch_1d
    f = t_cont.dtype.type
    B, N_in, S_in = in_used.shape
    N, S = t_cont.shape[1:]
    gx = cp.empty(in_used.shape, t_cont.dtype)
    kern = function("bats_backward.cu", "bats_input_grad", t_cont.dtype, KERNEL_DEFINES)
    launch_1d(kern, B * N_in, (cp.ascontiguousarray(weight), cp.ascontiguousarray(in_used),
                               cp.ascontiguousarray(t_cont), cp.ascontiguousarray(counts), G1, G2,
                               np.int64(B), np.int32(N), np.int32(N_in), np.int32(S_in), np.int32(S),
                               f(tau_s), gx))
    return gx
