"""snnkit: a teaching toolkit for training spiking neural networks.

Three methods, each in its own folder, each with NumPy twins of its CUDA kernels:
``snnkit.bats`` (exact backprop through spike times), ``snnkit.s3gd`` (sparse surrogate-gradient
BPTT) and ``snnkit.stbp`` (spatio-temporal backprop with threshold-dependent batch norm).
"""
from . import backend
from .backend import get_xp

__version__ = "0.1.0"
__all__ = ["backend", "get_xp", "__version__"]
