"""Data sets and spike encoders.

``load(name, split)`` returns a :class:`Dataset` (``x, y = load("digits")``). ``digits`` and
``yinyang`` are embedded (no network). The real data sets (MNIST, Fashion-MNIST, EMNIST, SHD,
N-MNIST) download into a checked cache (see ``snnkit.datasets.real``); the event sets (SHD, N-MNIST)
are :class:`EventData`, and :class:`EventBinner` is their encoder for the Trainer (binned on the GPU).
"""
from .embedded import Dataset, digits, yinyang, SPLITS
from .encoders import latency, log_latency, poisson, direct, LatencyEncoder, LogLatencyEncoder
from .events import EventBinner, EventData
from ..nn.trainer import iterate_batches

EMBEDDED = {"digits": digits, "yinyang": yinyang}
REAL = ("mnist", "fashion_mnist", "emnist", "shd", "nmnist")


def load(name: str, split: str = "train", **kwargs) -> Dataset:
    """Load a data set by name: digits, yinyang (embedded) or mnist, fashion_mnist, emnist, shd,
    nmnist (downloaded into the cache on first use)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a data set name (a string), got {type(name).__name__} {name!r}")
    if not isinstance(split, str):
        raise TypeError(f"split must be a string such as 'train', got {type(split).__name__} {split!r}")
    key = name.lower().replace("-", "_")
    if key in EMBEDDED:
        if kwargs:
            raise ValueError(f"{name} is embedded and takes no options; got {sorted(kwargs)} (limit, n_steps, dt, "
                             "stand_in, ... apply to the downloaded data sets). Slice the result instead: "
                             "x[:n], y[:n].")
        return EMBEDDED[key](split)
    if key in REAL:
        from . import real
        return real.load(key, split, **kwargs)
    raise ValueError(f"unknown data set {name!r}; choose one of {sorted(EMBEDDED) + list(REAL)}")


__all__ = ["load", "Dataset", "digits", "yinyang", "latency", "log_latency", "poisson", "direct", "LatencyEncoder",
           "LogLatencyEncoder", "EventBinner", "EventData",
           "iterate_batches", "SPLITS", "EMBEDDED", "REAL"]
