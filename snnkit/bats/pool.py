"""2x2 spike-merge pooling for event-based (BATS) networks.

A pooling window of a spiking feature map has no potential to take a maximum of; BATS pools by
*merging* the spike trains of the 4 neurons of each 2x2 window (per channel) into one train:

    out(i, j, c) = sort( in(2i, 2j, c)  U  in(2i, 2j+1, c)  U  in(2i+1, 2j, c)  U  in(2i+1, 2j+1, c) )

Every input spike survives, so the map is a permutation of the input spikes and its backward is the
inverse permutation: the error of output slot k goes, unchanged, to the input spike it came from

    dL/dt_in[source(k)] = dL/dt_out[k]

Layout: a feature map [H, W, C] is flattened channels-last, neuron n = (h * W + w) * C + c, the
same order as a ``ConvLIF`` output and as a row-major image with C = 1. The output keeps as many
slots as the fullest merged train of the batch (at most 4 x the input's slots): nothing is dropped,
and padding slots that no neuron uses are not carried to the next layer. Spikes a source neuron
had already lost to its own ``max_spikes`` (``overflow``) are summed into the merged neuron's
``overflow`` so saturation stays visible downstream.

The code is array-module generic (NumPy on the CPU, CuPy on the GPU: the sort and gathers run as
CuPy's CUDA kernels), with no Python loop over samples or positions.
"""
from __future__ import annotations

from ..backend import xp_of
from ..nn.protocol import require_forward
from ..spikes import SpikeTrains

__all__ = ["merge_pool", "merge_pool_backward", "SpikePool2d"]


def _check_shape(input_shape):
    from .conv import _check_map
    H, W, C = _check_map(input_shape)
    if H % 2 or W % 2:
        raise ValueError(f"input_shape {input_shape}: 2x2 pooling needs an even height and width (nothing "
                         "is cropped silently); change the previous layer's size or kernel so they are even.")
    return H, W, C


def _windows(a, H, W, C):
    """[B, H*W*C, S] -> [B, H/2 * W/2 * C, 4*S]: the 4 trains of each window side by side."""
    B, S = a.shape[0], a.shape[-1]
    a = a.reshape(B, H // 2, 2, W // 2, 2, C, S).transpose(0, 1, 3, 5, 2, 4, 6)
    return a.reshape(B, (H // 2) * (W // 2) * C, 4 * S)


def _unwindows(a, H, W, C, S):
    """Inverse of :func:`_windows`."""
    B = a.shape[0]
    a = a.reshape(B, H // 2, W // 2, C, 2, 2, S).transpose(0, 1, 4, 2, 5, 3, 6)
    return a.reshape(B, H * W * C, S)


def merge_pool(spikes: SpikeTrains, input_shape):
    """Merge 2x2 windows of ``spikes`` (a flattened [H, W, C] map).

    Returns ``(out, order)``: the merged :class:`SpikeTrains` and, per output slot, the index into
    the window's concatenated 4*S input slots that it came from (needed by the backward).
    """
    H, W, C = _check_shape(input_shape)
    if not isinstance(spikes, SpikeTrains):
        raise TypeError(f"merge_pool takes SpikeTrains; got {type(spikes).__name__}")
    t = spikes.times
    if t.ndim != 3 or t.shape[1] != H * W * C:
        raise ValueError(f"spikes.times must be [batch, {H * W * C}, slots] for input_shape {tuple(input_shape)}; "
                         f"got {tuple(t.shape)}")
    if t.shape[0] < 1 or t.shape[2] < 1:
        raise ValueError(f"spikes.times has shape {tuple(t.shape)}: an empty batch or no slots; pass at least one "
                         "sample with one slot")
    xp = xp_of(t)
    cat = _windows(t, H, W, C)
    # stable sort: +inf padding goes last, equal times keep a fixed (window-order) tie break
    order = xp.argsort(cat, axis=2, kind="stable")
    merged = xp.take_along_axis(cat, order, axis=2)
    counts = spikes.counts.reshape(t.shape[0], H // 2, 2, W // 2, 2, C).sum(axis=(2, 4))
    counts = counts.reshape(t.shape[0], -1).astype(xp.int32)
    keep = max(int(counts.max()) if counts.size else 0, 1)      # slots beyond are +inf everywhere
    overflow = None
    if spikes.overflow is not None:
        overflow = spikes.overflow.reshape(t.shape[0], H // 2, 2, W // 2, 2, C).sum(axis=(2, 4))
        overflow = overflow.reshape(t.shape[0], -1).astype(xp.int32)
    # merging moves no spike: the pooled times stay on the grid the inputs were on
    out = SpikeTrains(xp.ascontiguousarray(merged[:, :, :keep]), counts, overflow, (H // 2, W // 2, C), spikes.grid)
    return out, order


def merge_pool_backward(grad_out, order, input_shape, in_slots: int):
    """Route ``dL/dt_out [B, N_out, S_out]`` back to the input slots: ``dL/dt_in [B, N_in, in_slots]``."""
    H, W, C = _check_shape(input_shape)
    xp = xp_of(grad_out)
    B, n_out, full = order.shape
    if grad_out.ndim != 3 or grad_out.shape[:2] != (B, n_out) or grad_out.shape[2] > full:
        raise ValueError(f"grad_out must be [{B}, {n_out}, <= {full}] (the pooled output's shape); "
                         f"got {tuple(grad_out.shape)}")
    g = xp.zeros((B, n_out, full), dtype=grad_out.dtype)
    g[:, :, :grad_out.shape[2]] = grad_out
    inverse = xp.argsort(order, axis=2)          # order is a permutation: its argsort inverts it
    g_cat = xp.take_along_axis(g, inverse, axis=2)
    return _unwindows(g_cat, H, W, C, in_slots)


class SpikePool2d:
    """2x2 spike-merge pooling layer (no parameters).

    ``forward(SpikeTrains over [H, W, C]) -> SpikeTrains over [H/2, W/2, C]``;
    ``backward(dL/dt_out, need_input_grad=True) -> dL/dt_in`` (exact: a permutation of the errors).
    """

    def __init__(self, input_shape):
        self.input_shape = _check_shape(tuple(input_shape))
        H, W, C = self.input_shape
        self.output_shape = (H // 2, W // 2, C)
        self.n_in, self.n_out = H * W * C, (H // 2) * (W // 2) * C
        self.params, self.grads = {}, {}
        self._order = None
        self._in_slots = None
        self._out_times = None

    def forward(self, spikes: SpikeTrains) -> SpikeTrains:
        from .layers import _enter
        if not isinstance(spikes, SpikeTrains):
            raise TypeError(f"SpikePool2d takes SpikeTrains (its counts say how many slots are real); "
                            f"got {type(spikes).__name__}")
        _enter(spikes, self.n_in, f"SpikePool2d{self.input_shape}", self.input_shape)   # counts == finite slots
        out, order = merge_pool(spikes, self.input_shape)
        self._order, self._in_slots, self._out_times = order, spikes.times.shape[2], out.times
        out._bats_checked = getattr(spikes, "_bats_checked", False)   # merging keeps trains valid
        return out

    __call__ = forward

    def backward(self, grad_out, need_input_grad=True):
        require_forward(self, self._order)
        if not need_input_grad:
            return None
        if tuple(grad_out.shape) != tuple(self._out_times.shape):
            raise ValueError(f"grad_out must have the forward output's shape {tuple(self._out_times.shape)}; "
                             f"got {tuple(grad_out.shape)}")
        xp = xp_of(grad_out)
        grad_out = xp.where(xp.isfinite(self._out_times), grad_out, 0)   # padding slots carry no error
        return merge_pool_backward(grad_out, self._order, self.input_shape, self._in_slots)

    def __repr__(self):
        return f"SpikePool2d({self.input_shape} -> {self.output_shape})"
