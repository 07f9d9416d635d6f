"""The layer protocol (snnkit.nn.protocol).

:func:`require_forward` is the one check every layer makes for "backward before forward", so that
the error and its wording are the same in every method (the ``Layer`` Protocol joins it here).
"""
from __future__ import annotations


def require_forward(layer, cache):
    if cache is None:
        raise RuntimeError(f"{getattr(layer, 'name', None) or type(layer).__name__}.backward called before "
                           "forward: run forward on the batch first")
