"""Convolutional BATS layer: valid convolution, stride 1, exact gradients.

A convolutional spiking layer is a dense layer whose neurons share weights. Output neuron
(x, y, c) of a [fx, fy] kernel over an [H, W, C_in] input map sees only the patch
inputs (x + i, y + j, k), 0 <= i < fx, 0 <= j < fy, with weight w[c, i, j, k]:

    on input spike t_(x+i, y+j, k):   v_(x,y,c) += w[c, i, j, k]

and otherwise the same current-based LIF dynamics, threshold, subtractive reset and exact
spike-time gradients as the dense layer (see ``snnkit.bats`` for the equations). So the layer is
computed as exactly that: the patches are gathered ("im2col" on spike trains),

    patches[b, (x, y)] = in[b, x:x+fx, y:y+fy, :]           [B * P, fx * fy * C_in, S_in]

each (sample, position) becomes one sample of the dense simulation (``simulate``) with weight
w.reshape(C_out, -1), and its outputs are laid out again as an [H-fx+1, W-fy+1, C_out] map (channels last). The
backward is the dense backward (``backward.backward``) on that simulation, followed by

    dL/dw[c, i, j, k]  = sum over samples AND positions of the dense weight gradient
                         (the dense backward already sums over its batch B * P)
    dL/dt_in           = sum over the patches that contain an input of the patch errors
                         (a "col2im": fx * fy shifted adds, no scatter)

Everything the dense simulation does (multi-spike event loop, overflow counting, ``dt`` grid with
continuous and grid times) carries over unchanged; the CUDA path is the dense kernels
(kernels/bats_forward.cu, bats_backward.cu) on the B * P batch (their grids grow with the batch),
plus the gather and fold, which are strided copies on the array module (NumPy or CuPy).
Memory: the patch tensor is fx * fy times the input, never B * N_pre * S * N_post.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import rng as _rng, to_device, xp_of
from ..nn.protocol import require_forward
from ..spikes import SpikeTrains
from .backward import backward as dense_backward
from .neuron import NeuronLayer, as_parameters, check_exp_range, on_grid
from .simulate import simulate

__all__ = ["gather_patches", "fold_patches", "ConvLIF"]


def _check_map(input_shape):
    try:
        ok = len(input_shape) == 3
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}")
    return tuple(checks.integer(f"input_shape[{i}]", v, 1) for i, v in enumerate(input_shape))


def gather_patches(a, input_shape, kernel_size):
    """[B, H*W*C, S] -> [B * Ho * Wo, fx * fy * C, S] (patch order i, j, k like the weights)."""
    H, W, C = input_shape
    fx, fy = kernel_size
    Ho, Wo = H - fx + 1, W - fy + 1
    xp = xp_of(a)
    B, S = a.shape[0], a.shape[2]
    m = a.reshape(B, H, W, C, S)
    cols = xp.stack([m[:, i:i + Ho, j:j + Wo] for i in range(fx) for j in range(fy)], axis=3)
    return cols.reshape(B * Ho * Wo, fx * fy * C, S)    # [B, Ho, Wo, fx*fy, C, S] -> rows


def fold_patches(cols, batch, input_shape, kernel_size):
    """Adjoint of :func:`gather_patches`: add each patch entry back onto its input neuron."""
    H, W, C = input_shape
    fx, fy = kernel_size
    Ho, Wo = H - fx + 1, W - fy + 1
    xp = xp_of(cols)
    S = cols.shape[2]
    c = cols.reshape(batch, Ho, Wo, fx, fy, C, S)
    out = xp.zeros((batch, H, W, C, S), dtype=cols.dtype)
    for i in range(fx):
        for j in range(fy):
            out[:, i:i + Ho, j:j + Wo] += c[:, :, :, i, j]
    return out.reshape(batch, H * W * C, S)


class ConvLIF(NeuronLayer):
    """Valid, stride-1 convolution of BATS neurons; weights ``params["weight"]`` [C_out, fx, fy, C_in];
    ``neuron`` is a :class:`snnkit.bats.LIFParameters`, as for the dense layer.

    ``forward(SpikeTrains over [H, W, C_in]) -> SpikeTrains over [H-fx+1, W-fy+1, C_out]``,
    ``backward(dL/dt_out, need_input_grad=True) -> dL/dt_in``. ``neuron.dt`` as in the dense layer:
    None = continuous; else the returned times (what the next layer, the loss and the prediction
    see) are the grid times and ``self.continuous`` holds the continuous ones of the same spikes.
    """

    def __init__(self, input_shape, channels, kernel_size, neuron, init=(-1.0, 1.0), seed=None, dtype=np.float32,
                 name=None):
        self.input_shape = _check_map(input_shape)
        H, W, C = self.input_shape
        ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        if len(ks) != 2:
            raise ValueError(f"kernel_size must be an int or (fx, fy) >= 1; got {kernel_size}")
        ks = tuple(checks.integer("kernel_size", k, 1) for k in ks)
        if ks[0] > H or ks[1] > W:
            raise ValueError(f"kernel_size {ks} is larger than the input map {(H, W)}; a valid convolution "
                             "needs kernel <= input (use a smaller kernel or drop a pooling layer)")
        channels = checks.integer("channels", channels, 1, "It is the number of output feature maps.")
        dtype = checks.float_dtype("dtype", dtype)
        self.neuron = as_parameters(neuron)
        self.kernel_size, self.channels = ks, int(channels)
        self.output_shape = (H - ks[0] + 1, W - ks[1] + 1, self.channels)
        self.n_positions = self.output_shape[0] * self.output_shape[1]
        self.n_in, self.n_out = H * W * C, self.n_positions * self.channels
        from .layers import _check_init
        lo, hi = _check_init(init)
        w = _rng(seed).uniform(lo, hi, size=(self.channels, ks[0], ks[1], C))
        check_exp_range(None, self.tau_s, dtype, t_max=self.t_max)
        self.params = {"weight": to_device(np.asarray(w, dtype=dtype))}
        self.grads = {"weight": xp_of(self.params["weight"]).zeros_like(self.params["weight"])}
        self.name = name
        self.last = None              # the dense Simulation of the last forward (batch B * positions)
        self.continuous = None
        self._batch = None

    def forward(self, spikes: SpikeTrains) -> SpikeTrains:
        from .layers import _enter
        t = _enter(spikes, self.n_in, f"ConvLIF{self.input_shape}", self.input_shape)
        if t.ndim != 3 or t.shape[1] != self.n_in:
            raise ValueError(f"spikes.times must be [batch, {self.n_in}, slots] for input_shape "
                             f"{self.input_shape}; got {tuple(t.shape)}")
        if t.shape[0] < 1:
            raise ValueError(f"ConvLIF: the input spikes are an empty batch (shape {tuple(t.shape)})")
        B = t.shape[0]
        cols = gather_patches(t, self.input_shape, self.kernel_size)          # [B*P, K, S_in]
        w = self.params["weight"].reshape(self.channels, -1)                  # [C_out, K]
        trusted = getattr(spikes, "_bats_checked", False)      # made by a BATS layer: already valid
        n = self.neuron
        self.last = simulate(w, cols, n.tau_s, n.theta, n.delta_theta, n.max_spikes, n.t_max, n.dt,
                             check=not trusted, name="input spikes (patches)", on_grid=on_grid(spikes.grid, n.dt))
        self._batch = B
        to_map = lambda a: a.reshape(B, self.n_out, *a.shape[2:])           # [B*P, C_out] -> [B, P*C_out]
        out = SpikeTrains(to_map(self.last.times), to_map(self.last.counts), to_map(self.last.overflow),
                          self.output_shape, n.dt)
        self.continuous = None if self.dt is None else SpikeTrains(to_map(self.last.t_cont), out.counts)
        out._bats_checked = True
        return out

    __call__ = forward

    def backward(self, grad_out, need_input_grad=True):
        require_forward(self, self.last)
        B = self._batch
        S = self.last.times.shape[2]
        if grad_out.ndim != 3 or tuple(grad_out.shape) != (B, self.n_out, S):
            raise ValueError(f"grad_out must be [{B}, {self.n_out}, {S}] (the forward output's shape); "
                             f"got {tuple(grad_out.shape)}")
        g = grad_out.reshape(B * self.n_positions, self.channels, S)
        w = self.params["weight"].reshape(self.channels, -1)
        n = self.neuron
        dw, d_cols = dense_backward(w, self.last, g, n.tau_s, n.theta, n.delta_theta, need_input_grad=need_input_grad)
        self.grads["weight"][...] = dw.reshape(self.params["weight"].shape)   # summed over B and positions
        if d_cols is None:                   # first layer of a network: the inputs are data
            return None
        return fold_patches(d_cols, B, self.input_shape, self.kernel_size)

    def __repr__(self):
        fx, fy = self.kernel_size
        return (f"ConvLIF({self.input_shape} -> {self.output_shape}, {self.channels}C{fx}x{fy}, "
                f"theta={self.theta}, max_spikes={self.max_spikes}, dt={self.dt})")
