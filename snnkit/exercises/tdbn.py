"""Exercises of notebook 06 (deep SNNs, STBP + tdBN). Each check computes its truth with snnkit."""
from __future__ import annotations

import numpy as np

from . import number, verdict




def check_silent_depth(answer, weight_mean=0.5, gain=1.0):
    """The first layer of a plain stack without normalization that does not fire at all, for the
    probe's defaults (width 128, T = 4, Vth 0.4) and the given mean weight; computed by
    :func:`snnkit.stbp.probe.silent_depth`."""
    from ..stbp.probe import silent_depth
    truth = silent_depth(norm=None, weight_mean=weight_mean, gain=gain)
    a = number(answer)
    ok = a is not None and truth is not None and a == truth
    return verdict("silent depth", answer, ok,
                   right=f"layer {truth} is the first without a single spike (weight mean {weight_mean:g}). Each layer "
                         "fires a little less than the one below, and a silent layer has nothing to pass on.",
                   wrong="run depth_profile(depth=40, norm=None, weight_mean=...) and look for the first layer whose "
                         "rate is exactly 0 (layers count from 1, the array from 0).")


def check_tdbn_scale(answer, alpha=1 / np.sqrt(2), v_th=0.4):
    """The standard deviation of a fresh tdBN layer's output (training mode), measured on random
    input through :class:`snnkit.stbp.TDBatchNorm` itself."""
    from ..stbp import TDBatchNorm
    a = number(answer)
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 512, 8))                  # [T, B, C], far from N(0, 1)
    truth = float(np.asarray(TDBatchNorm(8, alpha=alpha, v_th=v_th, dtype=np.float64).forward(x)).std())
    ok = a is not None and abs(a - truth) <= 0.01 * truth
    return verdict("tdBN scale", answer, ok,
                   right=f"the output std is alpha Vth = {truth:.4f}: x^ has unit variance, then gamma alpha Vth with "
                         "gamma = 1 scales it.",
                   wrong=f"the normalized x^ has mean 0 and std 1; tdBN then multiplies by gamma alpha Vth (gamma = 1 at "
                         f"initialization). Here alpha = {alpha:.4g}, Vth = {v_th:g}.")


def check_bn_threshold(answer):
    """The threshold at which plain BN and tdBN (alpha = 1) compute the same layer: checked by
    running both layers of :mod:`snnkit.stbp.tdbn` on the same input."""
    from ..stbp import BatchNorm, TDBatchNorm
    a = number(answer)
    ok = False
    if a is not None and a > 0:
        x = np.random.default_rng(1).normal(0.5, 1.5, (2, 256, 4))
        tdbn = TDBatchNorm(4, alpha=1.0, v_th=a, dtype=np.float64).forward(x)
        bn = BatchNorm(4, dtype=np.float64).forward(x)
        ok = np.allclose(np.asarray(tdbn), np.asarray(bn), rtol=1e-9, atol=1e-12)
    return verdict("BN = tdBN threshold", answer, ok,
                   right="at alpha Vth = 1 the two layers are the same function, so with alpha = 1 plain BN is tdBN "
                         "at Vth = 1 - and only there.",
                   wrong="write both outputs: plain BN gives x^, tdBN gives alpha Vth x^. For which Vth (alpha = 1) "
                         "are they equal?")
