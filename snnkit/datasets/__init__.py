"""Data sets and spike encoders.

``load(name, split)`` returns a :class:`Dataset` (``x, y = load("digits")``). ``digits`` and
``yinyang`` are embedded (no network). The real data sets (MNIST, Fashion-MNIST, EMNIST, SHD,
N-MNIST) download into a checked cache (see ``snnkit.datasets.real``).
"""
from .embedded import Dataset, digits, yinyang, SPLITS
from .encoders import latency, log_latency, poisson, direct
from ..nn.trainer import iterate_batches

EMBEDDED = {"digits": digits, "yinyang": yinyang}
REAL = ("mnist", "fashion_mnist", "emnist", "shd", "nmnist")


def load(name: str, split: str = "train", **kwargs) -> Dataset:
    """Load a data set by name: digits, yinyang (embedded) or mnist, fashion_mnist, emnist, shd,
    nmnist (downloaded into the cache on first use)."""
    key = name.lower().replace("-", "_")
    if key in EMBEDDED:
        return EMBEDDED[key](split, **kwargs)
    if key in REAL:
        from . import real
        return real.load(key, split, **kwargs)
    raise ValueError(f"unknown data set {name!r}; choose one of {sorted(EMBEDDED) + list(REAL)}")


__all__ = ["load", "Dataset", "digits", "yinyang", "latency", "log_latency", "poisson", "direct",
           "iterate_batches", "SPLITS", "EMBEDDED", "REAL"]
