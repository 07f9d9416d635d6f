r"""Spiking residual networks (Zheng et al. 2021): the basic block and ResNet-19.

Basic block (stride s, widths c_in -> c_out):

    main     = tdBN_(alpha=1/sqrt2)( conv3x3( LIF( tdBN_(alpha=1)( conv3x3_s(x) ) ) ) )
    shortcut = x                                      if s == 1 and c_in == c_out
             = tdBN_(alpha=1/sqrt2)( conv1x1_s(x) )   otherwise
    out      = LIF(main + shortcut)

Two branches of variance (Vth/sqrt2)^2 add back to Vth^2, so every LIF in the network starts
with pre-activations of the same scale, whatever the depth. Backward: the gradient of the final
LIF goes to both branches and their input gradients add.

ResNet-19 (published, MNIST/CIFAR): conv3x3,128 -> 3 blocks of 128 -> 3 blocks of 256 (first
stride 2) -> 2 blocks of 512 (first stride 2) -> global average pool -> FC 256 -> LIF -> FC 10,
averaged over T (non-spiking readout). ``resnet19(width=..., blocks=..., fc=...)`` sizes it
down for a CPU. ``norm`` picks "tdbn", "bn" (plain, N(0, 1)) or None (no normalization).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..nn.sequential import Sequential
from .conv import Conv2d
from .layers import DirectInput, GlobalAvgPool, Linear, Readout
from .lif import LIF, STBP, _as_parameters
from .tdbn import BatchNorm, TDBatchNorm

NORMS = ("tdbn", "bn", None)


def make_norm(norm, C, alpha, v_th, dtype, name, in_shape=None):
    if norm == "tdbn":
        return TDBatchNorm(C, alpha=alpha, v_th=v_th, dtype=dtype, name=name, in_shape=in_shape)
    if norm == "bn":
        return BatchNorm(C, dtype=dtype, name=name, in_shape=in_shape)
    if norm is None:
        return None
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class BasicBlock(Sequential):
    """The residual block of the module docstring. ``layers`` lists its leaf layers (main branch,
    shortcut, final LIF) for the optimizer; ``params`` / ``grads`` are Sequential's views of them."""

    def __init__(self, c_in, c_out, stride=1, norm="tdbn", neuron=STBP, alpha=1.0, alpha_residual=1 / np.sqrt(2),
                 seed=None, dtype=np.float32, name="block", *, in_shape=None):
        """``in_shape`` (H, W) of the input frames: when given, every conv and norm checks the layout
        of its input by shape (SpikingResNet passes it)."""
        neuron = _as_parameters(neuron)
        v_th = neuron.v_th
        r = np.random.default_rng(seed)
        s = lambda: int(r.integers(2 ** 31))                       # noqa: E731  (one seed per conv)
        self.name = name
        self.conv1 = Conv2d(c_in, c_out, 3, stride, seed=s(), dtype=dtype, name=f"{name}.conv1", in_shape=in_shape)
        hw = self.conv1.out_shape
        self.out_shape = hw
        self.bn1 = make_norm(norm, c_out, alpha, v_th, dtype, f"{name}.bn1", hw)
        self.lif1 = LIF(neuron, name=f"{name}.lif1")
        self.conv2 = Conv2d(c_out, c_out, 3, 1, seed=s(), dtype=dtype, name=f"{name}.conv2", in_shape=hw)
        self.bn2 = make_norm(norm, c_out, alpha_residual, v_th, dtype, f"{name}.bn2", hw)
        self.main = Sequential(self.conv1, self.bn1, self.lif1, self.conv2, self.bn2)
        if stride != 1 or c_in != c_out:
            self.shortcut = Sequential(Conv2d(c_in, c_out, 1, stride, padding=0, seed=s(), dtype=dtype,
                                              name=f"{name}.down", in_shape=in_shape),
                                       make_norm(norm, c_out, alpha_residual, v_th, dtype, f"{name}.down_bn", hw))
        else:
            self.shortcut = None                                  # identity
        self.lif2 = LIF(neuron, name=f"{name}.lif2")
        super().__init__(self.main.layers + (self.shortcut.layers if self.shortcut else []) + [self.lif2])
        self.fused = None                # (NormLIF(bn1, lif1), NormLIF(bn2, lif2)) while set_fused(True)

    def set_fused(self, on=True):
        """Run bn1 + lif1 and bn2 + (shortcut) + lif2 through the fused kernels (snnkit.stbp.fused):
        the same numbers, fewer passes over memory. Needs a norm (tdbn or bn)."""
        from .fused import NormLIF
        self.fused = (NormLIF(self.bn1, self.lif1), NormLIF(self.bn2, self.lif2)) if on and self.bn1 is not None else None
        return self

    def forward(self, x):
        if self.fused:
            f1, f2 = self.fused
            h = self.conv2.forward(f1.forward(self.conv1.forward(x)))
            return f2.forward(h, self.shortcut.forward(x) if self.shortcut else x)
        z = self.main.forward(x) + (self.shortcut.forward(x) if self.shortcut else x)
        return self.lif2.forward(z)

    __call__ = forward

    def backward(self, g, need_input_grad=True):
        if self.fused:
            f1, f2 = self.fused
            d2, g = f2.backward(g)                # d2 = dL/d(conv2's output); g = dL/dz, the shortcut's too
            d1, _ = f1.backward(self.conv2.backward(d2))
            gx = self.conv1.backward(d1, need_input_grad)
        else:
            g = self.lif2.backward(g)
            gx = self.main.backward(g, need_input_grad)
        if not need_input_grad:
            if self.shortcut:
                self.shortcut.backward(g, need_input_grad=False)   # its weights still learn
            return None
        return gx + (self.shortcut.backward(g) if self.shortcut else g)

    def __repr__(self):
        return f"BasicBlock({self.name}: {self.conv1.c_in} -> {self.conv1.c_out}, stride {self.conv1.stride})"


class SpikingResNet(Sequential):
    """A model for :class:`snnkit.nn.Trainer`: ``forward(data [B, features]) -> logits [B, classes]``.

    ``layers`` lists the leaf layers (the optimizer's order; the data-only ``input`` is not among
    them). ``backward(g)`` skips the input gradient by default: a model's input is data."""

    def __init__(self, n_steps=2, in_shape=(28, 28, 1), width=128, blocks=(3, 3, 2), fc=256, num_classes=10,
                 norm="tdbn", neuron=STBP, alpha=1.0, alpha_residual=1 / np.sqrt(2), seed=0, dtype=np.float32):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if len(blocks) < 1 or any(checks.integer("blocks", b, 1) < 1 for b in blocks):
            raise ValueError(f"blocks lists the number of blocks per stage (each >= 1), got {blocks}")
        neuron = _as_parameters(neuron)
        v_th = neuron.v_th
        r = np.random.default_rng(seed)
        s = lambda: int(r.integers(2 ** 31))                       # noqa: E731
        self.neuron = neuron
        self.config = dict(n_steps=n_steps, in_shape=tuple(in_shape), width=width, blocks=tuple(blocks), fc=fc,
                           num_classes=num_classes, norm=norm, neuron=neuron, alpha=alpha,
                           alpha_residual=alpha_residual)
        width, fc, num_classes = (checks.integer(nm, v, 1) for nm, v in
                                  (("width", width), ("fc", fc), ("num_classes", num_classes)))
        self.input = DirectInput(n_steps, in_shape, dtype)
        c_img = self.input.shape[2]
        hw = self.input.shape[:2]
        self.stem = Sequential(Conv2d(c_img, width, 3, 1, seed=s(), dtype=dtype, name="conv1", in_shape=hw),
                               make_norm(norm, width, alpha, v_th, dtype, "bn1", hw),
                               LIF(neuron, name="lif1"))
        self.blocks = []
        c = width
        for stage, n in enumerate(blocks):
            c_out = width * 2 ** stage
            for i in range(int(n)):
                stride = 2 if (stage > 0 and i == 0) else 1
                self.blocks.append(BasicBlock(c, c_out, stride, norm, neuron, alpha, alpha_residual, seed=s(),
                                              dtype=dtype, name=f"s{stage + 1}.b{i + 1}", in_shape=hw))
                c, hw = c_out, self.blocks[-1].out_shape
        self.head = Sequential(GlobalAvgPool(),
                               Linear(c, fc, bias=norm is None, seed=s(), dtype=dtype, name="fc1"),  # BN absorbs a bias
                               make_norm(norm, fc, alpha, v_th, dtype, "fc1_bn", ()),
                               LIF(neuron, name="fc1_lif"),
                               Linear(fc, num_classes, seed=s(), dtype=dtype, name="fc2"),
                               Readout())
        super().__init__(self.stem.layers + [l for b in self.blocks for l in b.layers] + self.head.layers)
        self._stem_fused = None                                   # NormLIF(stem bn, stem LIF) while set_fused(True)

    def set_fused(self, on=True):
        """Run every conv's tdBN + LIF (stem and blocks; with the residual add before a block's last
        LIF) through the fused kernels of :mod:`snnkit.stbp.fused`: the same numbers, fewer passes
        over memory. Off by default; ``norm=None`` has nothing to fuse."""
        from .fused import NormLIF
        conv, bn, lif = self.stem.layers if len(self.stem.layers) == 3 else (None, None, None)
        self._stem_fused = NormLIF(bn, lif) if on and bn is not None else None
        for block in self.blocks:
            block.set_fused(on)
        return self

    # -- the Trainer's protocol --
    def forward(self, x):
        h = self.input.forward(x)
        if self._stem_fused:
            h = self._stem_fused.forward(self.stem.layers[0].forward(h))
        else:
            h = self.stem.forward(h)
        for block in self.blocks:
            h = block.forward(h)
        return self.head.forward(h)

    __call__ = forward

    def backward(self, g, need_input_grad=False):
        """Gradients of every layer; dL/d(data) only with ``need_input_grad=True`` (the stem conv
        skips its col2im otherwise)."""
        g = self.head.backward(g)
        for block in reversed(self.blocks):
            g = block.backward(g)
        if self._stem_fused:
            g = self.stem.layers[0].backward(self._stem_fused.backward(g)[0], need_input_grad)
        else:
            g = self.stem.backward(g, need_input_grad)
        return self.input.backward(g) if need_input_grad else None

    # -- firing-rate monitors --
    def lif_layers(self):
        return [l for l in self.layers if isinstance(l, LIF)]

    def monitor(self, on=True):
        """Start (reset) or stop recording spike counts in every LIF layer."""
        for l in self.lif_layers():
            l.reset_monitor()
            l.monitor(on)
        return self

    def firing_rates(self, per_step=False):
        """{layer name: spikes per neuron per time step} over what was recorded since monitor(True)."""
        return {l.name: l.firing_rate(per_step) for l in self.lif_layers()}

    def n_params(self):
        return int(sum(p.size for l in self.layers for p in getattr(l, "params", {}).values()))

    def __repr__(self):
        c = self.config
        return (f"SpikingResNet(T={c['n_steps']}, width={c['width']}, blocks={c['blocks']}, fc={c['fc']}, "
                f"norm={c['norm']!r}, {len(self.lif_layers())} LIF layers, {self.n_params()} parameters)")


def resnet19(n_steps=2, in_shape=(28, 28, 1), width=128, blocks=(3, 3, 2), fc=256, num_classes=10, **kw):
    """ResNet-19 as published by default (conv1 + 8 blocks of 2 convs + 2 FC = 19 weight layers);
    e.g. ``resnet19(in_shape=(8, 8), width=8, blocks=(1, 1, 1), fc=32)`` for a CPU."""
    return SpikingResNet(n_steps, in_shape, width, blocks, fc, num_classes, **kw)
