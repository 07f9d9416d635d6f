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


def kaiming_normal(shape, fan_in, gain=np.sqrt(2.0), seed=None, dtype=np.float32):
    return normal(shape, 0.0, gain / np.sqrt(fan_in), seed, dtype)


def kaiming_uniform(shape, fan_in, gain=1.0, seed=None, dtype=np.float32):
    bound = gain * np.sqrt(3.0 / fan_in)
    return uniform(shape, -bound, bound, seed, dtype)
