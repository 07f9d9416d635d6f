"""STBP with threshold-dependent batch normalization: deep spiking networks trained through time.

Read in this order: ``lif`` (the neuron, its parameters ``LIFParameters`` and its surrogate backward), ``tdbn`` (normalization to
the threshold's scale), ``conv`` (im2col + GEMM), ``layers`` (input, FC, pooling, readout),
``resnet`` (residual block, ResNet-19), ``probe`` (firing rate by depth). Activations inside are
time-major and channels-last: ``[T, B, H, W, C]``.
"""
from ..nn.losses import SoftmaxCrossEntropy as CrossEntropy
from .lif import LIF, LIFParameters, STBP, lif_forward, lif_backward, lif_forward_reference, lif_backward_reference
from .tdbn import TDBatchNorm, BatchNorm, tdbn_forward, tdbn_backward, batch_stats, normalize
from .conv import Conv2d, conv2d_forward, conv2d_backward, im2col, col2im
from .layers import DirectInput, Linear, AvgPool2d, GlobalAvgPool, Readout
from .resnet import BasicBlock, SpikingResNet, resnet19
from .probe import depth_profile

__all__ = ["LIF", "LIFParameters", "STBP", "lif_forward", "lif_backward", "lif_forward_reference", "lif_backward_reference",
           "TDBatchNorm", "BatchNorm", "tdbn_forward", "tdbn_backward", "batch_stats", "normalize",
           "Conv2d", "conv2d_forward", "conv2d_backward", "im2col", "col2im",
           "DirectInput", "Linear", "AvgPool2d", "GlobalAvgPool", "Readout",
           "BasicBlock", "SpikingResNet", "resnet19", "CrossEntropy", "depth_profile"]
