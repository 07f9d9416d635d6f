"""A whole STBP training step of a :class:`~snnkit.stbp.SpikingResNet` (forward, softmax cross-entropy,
backward, Adam) recorded once as a CUDA graph and replayed with one launch per step.

    step = GraphStep(model, opt)        # SpikingResNet and snnkit.nn.Adam on CuPy
    value = step(x, labels)             # the loss as a 0-d device array: float(value) waits for the GPU

Why: a ResNet-19 step is several hundred kernels (im2col, GEMM, tdBN's reductions, LIF, Adam per
tensor); issuing them from Python costs ~5-10 us each, which the GPU waits for wherever its own
work is shorter (the 7x7 stage, the head, Adam). A replay issues all of them from one call.

It is the BATS step's recipe (``snnkit/bats/graph.py``, whose static buffers and device-scalar Adam
kernel it uses, so the update is one expression in one place):

* **No host sync inside.** The loss is computed on the device (the expressions of
  ``snnkit.nn.losses.SoftmaxCrossEntropy``, without its ``float``); labels are checked before the
  upload (on the host for NumPy labels). Nothing in the model's CuPy forward/backward syncs.
* **Fixed addresses.** The batch is copied into a static input buffer, the labels and Adam's
  per-step scalars (bias-corrected step, epsilon) into static device memory from pinned memory,
  before each replay; everything the step allocates comes from the graph's
  :class:`snnkit.capture.Workspace` (about twice the eager step's peak: the workspace keeps every
  block, where the eager step reuses freed ones). Gradients are written in place into the layers'
  ``grads`` (the layer protocol), the tdBN running statistics into their buffers.
* **One graph per key** (batch shape, dtype, fused or not, the addresses of every parameter,
  gradient and optimizer slot): a new key's first step runs eagerly through the same code
  (kernels compiled, optimizer state created), and is captured on its second.

The captured step enqueues the same kernels in the same order as the eager one, so it computes the
same numbers (``tests/test_stbp_gpu.py`` checks losses and weights over steps against
``model.forward``, the loss, ``model.backward`` and ``opt.step``).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import is_cupy_array
from ..capture import capture
from ..nn.losses import log_softmax
from ..nn.optim import Adam

__all__ = ["GraphStep", "softmax_xent_device"]


def softmax_xent_device(logits, labels):
    """(loss as a 0-d device array, dL/dlogits) with SoftmaxCrossEntropy's values and no host sync
    (``labels`` already checked, int64 on the device). The label entries are picked with a one-hot
    mask instead of fancy indexing: element-wise kernels only, and adding zeros changes no bit, so
    loss and gradient equal SoftmaxCrossEntropy's."""
    import cupy as cp
    B, C = logits.shape
    lp = log_softmax(logits)
    onehot = (cp.arange(C)[None, :] == labels[:, None]).astype(logits.dtype)
    loss = -(lp * onehot).sum(axis=1).mean()
    return loss, (cp.exp(lp) - onehot) / B


class GraphStep:
    """``step(x, labels) -> loss`` (0-d device array): one training step of ``model`` replayed as a
    CUDA graph. ``model``: a SpikingResNet on CuPy (fused or not, see ``set_fused``); ``opt``:
    :class:`~snnkit.nn.Adam` built on it. ``graphs=False`` runs every step eagerly through the same
    code (no capture), for comparisons."""

    def __init__(self, model, opt, graphs=True):
        from .resnet import SpikingResNet
        if not isinstance(model, SpikingResNet):
            raise TypeError(f"GraphStep runs a SpikingResNet (got {type(model).__name__}); train other models with "
                            "the Trainer's eager step")
        if type(opt) is not Adam:
            raise TypeError(f"GraphStep supports snnkit.nn.Adam (got {type(opt).__name__})")
        if [id(l) for l in opt.layers] != [id(l) for l in model.layers]:
            raise ValueError("opt must update the model's layers: build it as Adam(model, lr=...)")
        for key, _, p, g in opt.named_params():
            if not is_cupy_array(p):
                raise TypeError(f"parameter {key} is a {type(p).__module__} array: GraphStep needs the CuPy backend "
                                "(snnkit.backend.use('cupy') before building the model)")
            if not (p.flags.c_contiguous and g.flags.c_contiguous and g.dtype == p.dtype):
                raise ValueError(f"parameter {key} and its gradient must be C-contiguous and of one dtype (the step "
                                 "updates them in place)")
        self.model, self.opt, self.use_graphs = model, opt, bool(graphs)
        self.graphs, self.seen, self._buffers = {}, set(), {}
        self.captures = self.replays = self.eager = 0
        self.stream = None

    def _slots(self):
        """(p, g, m, v) of every parameter; m, v created as Adam._update creates them."""
        import cupy as cp
        out = []
        for key, _, p, g in self.opt.named_params():
            if (*key, "m") not in self.opt.state:
                self.opt.state[(*key, "m")] = cp.zeros_like(p)
                self.opt.state[(*key, "v")] = cp.zeros_like(p)
            out.append((p, g, self.opt.state[(*key, "m")], self.opt.state[(*key, "v")]))
        return out

    def _key(self, shape, dtype):
        fused = (self.model._stem_fused is not None, tuple(b.fused is not None for b in self.model.blocks))
        ptrs = tuple(a.data.ptr for s in self._slots() for a in s)
        return tuple(shape), str(dtype), fused, ptrs

    def __call__(self, x, labels):
        import cupy as cp
        from ..bats.graph import _StepBuffers
        if not is_cupy_array(x):
            raise TypeError("GraphStep: x must be on the GPU (a CuPy array); upload the batch first")
        dtype = self.model.input.dtype
        B = int(x.shape[0])
        y = checks.labels(labels, B, self.model.config["num_classes"])
        key = self._key(x.shape, dtype)
        bufs = self._buffers.get(key)
        if bufs is None:
            if len(self._buffers) >= 4:
                self._buffers.clear()
            bufs = self._buffers[key] = _StepBuffers(x.shape, dtype)
        if x.flags.c_contiguous and x.dtype == dtype:
            bufs.x.data.copy_from_device_async(x.data, x.nbytes)
        else:
            bufs.x[...] = x
        opt = self.opt
        opt.t += 1                                   # as Optimizer.step, then Adam._update's scalars
        bc1, bc2 = 1 - opt.b1 ** opt.t, np.sqrt(1 - opt.b2 ** opt.t)
        scalars = (opt.b1, opt.b2, opt.lr * bc2 / bc1, opt.eps * bc2)
        if is_cupy_array(y):                         # the scalars from pinned memory, then the labels on the device
            bufs.upload(np.zeros(B, np.int64), scalars)
            bufs.y[...] = y
        else:
            bufs.upload(y, scalars)
        g = self.graphs.get(key) if self.use_graphs else None
        if g is None and self.use_graphs and key in self.seen:
            if self.stream is None:
                self.stream = cp.cuda.Stream(non_blocking=True)
            g = self.graphs[key] = capture(self.stream, lambda: self._queue(*bufs.args))
            self.captures += 1
        if g is not None:
            graph, _, value = g
            graph.launch(stream=cp.cuda.get_current_stream())
            self.replays += 1
            return value
        self.seen.add(key)
        self.eager += 1
        return self._queue(*bufs.args)

    def _queue(self, x, y, sc):
        """Enqueue one step on the current stream; returns the loss (0-d device array)."""
        from ..bats.graph import _adam_device_scalars
        out = self.model.forward(x)
        value, g = softmax_xent_device(out, y)
        self.model.backward(g)
        kern = _adam_device_scalars()
        for p, grad, m, v in self._slots():
            kern(grad, sc, p, m, v)
        return value

    @property
    def workspace_bytes(self) -> int:
        return sum(g[1].nbytes for g in self.graphs.values())

    def __repr__(self):
        return f"GraphStep(captures {self.captures}, replays {self.replays}, eager {self.eager})"
