"""Weight initializers. Draws happen on the host with a seeded NumPy Generator and are then moved
to the backend, so the same seed gives the same network on CPU and GPU."""
from __future__ import annotations

import numpy as np

from ..backend import rng as _rng, to_device


def _finish(w, dtype):
    return to_device(np.asarray(w, dtype=dtype))


def uniform(shape, low=-1.0, high=1.0, seed=None, dtype=np.float32):
    return _finish(_rng(seed).uniform(low, high, size=shape), dtype)


def normal(shape, mean=0.0, std=1.0, seed=None, dtype=np.float32):
    return _finish(_rng(seed).normal(mean, std, size=shape), dtype)


def kaiming_normal(shape, fan_in, seed=None, dtype=np.float32):
    """He et al. 2015 for ReLU-like units: N(0, 2 / fan_in) (STBP's convolutions)."""
    return normal(shape, 0.0, np.sqrt(2.0 / fan_in), seed, dtype)
