"""Panel of notebook 00 (welcome): which pixels of a digit spike, when, and how often, under the
log-latency code (S3GD) and the Poisson rate code. The callback is a plain function."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..backend import to_numpy
from ..datasets import load, log_latency, poisson
from ..viz.encoding import pixel_codes_figure
from . import interactive_figure

__all__ = ["pixel_codes", "encoding_callback", "encoding_panel"]


@lru_cache(maxsize=1)
def _test_digits():
    return load("digits", "test")


def pixel_codes(x, threshold=0.2, n_steps=20, max_prob=0.5, tau=20.0, seed=0):
    """Per pixel of one image ``x`` [N]: the log-latency spike step (NaN if silent) and the Poisson
    spike count over ``n_steps`` (fixed ``seed``: the same draw every time)."""
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    r = to_numpy(log_latency(x, n_steps=int(n_steps), tau=tau, threshold=threshold))[0]       # [T, N]
    steps = np.where(r.any(axis=0), r.argmax(axis=0), np.nan)
    counts = to_numpy(poisson(x, n_steps=int(n_steps), max_prob=max_prob, rng=np.random.default_rng(seed)))[0].sum(axis=0)
    return steps, counts


def encoding_callback(index=0, threshold=0.2, n_steps=20, max_prob=0.5):
    """Digit ``index`` of the test split under the log-latency code (spike threshold ``threshold``,
    raster of ``n_steps``) and the Poisson code (``max_prob``)."""
    d = _test_digits()
    x = d.x[int(index)]
    steps, counts = pixel_codes(x, threshold, n_steps, max_prob)
    lit = int((x > 0).sum())
    n_log = int(np.isfinite(steps).sum())
    title = (f"digit '{d.y[int(index)]}' ({lit} non-black pixels). Log-latency: {n_log} pixels spike "
             f"(x > {threshold:g} and step < {int(n_steps)}).<br>Poisson: {int(counts.sum())} spikes in "
             f"{int(n_steps)} steps (probability {max_prob:g} x per step)")
    return pixel_codes_figure(x, steps, counts, title=title)


def encoding_panel(index=0, threshold=0.2, n_steps=20, max_prob=0.5):
    import ipywidgets as W
    return interactive_figure(
        encoding_callback,
        index=W.IntSlider(index, min=0, max=len(_test_digits()) - 1, description="digit"),
        threshold=W.FloatSlider(threshold, min=0.05, max=0.95, step=0.05, description="threshold"),
        n_steps=W.IntSlider(n_steps, min=5, max=100, step=5, description="n_steps"),
        max_prob=W.FloatSlider(max_prob, min=0.05, max=1.0, step=0.05, description="max_prob"))
