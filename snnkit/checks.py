"""Argument checks shared by every method: one place that decides what a valid number, dtype,
label array or allocation is, so that every public function rejects bad input the same way.

Each check raises ``TypeError`` (wrong kind of object: a string, a complex or boolean number, an
integer dtype where floats are needed) or ``ValueError`` (right kind, wrong value: NaN, inf, out
of range, wrong shape), and the message names the argument, says what was wrong and how to fix
it. They return the value in its canonical form (a Python float or int, an ``np.dtype``, an int64
label array), so a caller writes ``theta = checks.positive("theta", theta)``.

Labels (:func:`labels`) are the one check of class indices for every loss (softmax
cross-entropy of S3GD and STBP, the BATS time-to-first-spike and spike-count losses):

    integer dtype (a float 9.7 is not a class)   shape (B,)   0 <= y < C

The range check runs where the labels live: free for NumPy labels, one device sync for CuPy ones.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

__all__ = ["number", "positive", "nonnegative", "in_range", "integer", "float_dtype", "real_array",
           "labels", "allocation", "FLOAT_DTYPES"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_number(name, v):
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got the boolean {v!r}")
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got the complex {v!r}; pass its real part if that "
                        "is what you mean")
    if getattr(v, "ndim", 0) != 0:
        raise TypeError(f"{name} must be a single number, got an array of shape {tuple(v.shape)}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}") from None


def number(name, v, fix="", allow_inf=False) -> float:
    """A real number, finite unless ``allow_inf``; NaN never."""
    x = _as_number(name, v)
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {x}. {fix}".rstrip())
    return x


def positive(name, v, fix="", allow_inf=False) -> float:
    """A number > 0 (finite unless ``allow_inf``)."""
    x = number(name, v, fix, allow_inf)
    if not x > 0:
        raise ValueError(f"{name} must be > 0, got {x}. {fix}".rstrip())
    return x


def nonnegative(name, v, fix="", allow_inf=False) -> float:
    x = number(name, v, fix, allow_inf)
    if not x >= 0:
        raise ValueError(f"{name} must be >= 0, got {x}. {fix}".rstrip())
    return x


def in_range(name, v, lo, hi, lo_open=False, hi_open=False, fix="") -> float:
    """A finite number in [lo, hi] (ends excluded where ``*_open``)."""
    x = number(name, v, fix)
    ok_lo = x > lo if lo_open else x >= lo
    ok_hi = x < hi if hi_open else x <= hi
    if not (ok_lo and ok_hi):
        iv = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must lie in {iv}, got {x}. {fix}".rstrip())
    return x


def integer(name, v, minimum=None, fix="") -> int:
    """An integer (a float with an integral value such as 10.0 or 1e3 is accepted; 2.5 is not)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the boolean {v!r}")
    if isinstance(v, (numbers.Integral, np.integer)):
        n = int(v)
    else:
        x = _as_number(name, v)
        if not math.isfinite(x) or x != int(x):
            raise ValueError(f"{name} must be an integer, got {v!r}. {fix}".rstrip())
        n = int(x)
    if minimum is not None and n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}. {fix}".rstrip())
    return n


def float_dtype(name, dtype) -> np.dtype:
    """float32 or float64 (the kernels and the exp-range limits exist for those two only)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy float dtype (np.float32 or np.float64), got {dtype!r}") from None
    if d not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {d.name}; integer weights would be "
                        "truncated and float16 overflows. Pass dtype=np.float32 (or np.float64).")
    return d


def real_array(name, a, xp=None):
    """``a`` as an array of ``xp`` (default: NumPy, or a CuPy array stays CuPy) with a real numeric
    dtype: TypeError for complex (the imaginary part would be dropped), object, string dtypes."""
    from .backend import xp_of
    if xp is None:
        xp = xp_of(a)
    try:
        arr = xp.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a numeric array, got {type(a).__name__} ({e})") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({arr.dtype}); snnkit works with real numbers and would drop the "
                        f"imaginary part. Pass {name}.real if that is what you mean.")
    if kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def all_finite(a) -> bool:
    """One reduction (one device sync on a GPU)."""
    from .backend import xp_of
    if a.dtype.kind not in "fc":
        return True
    return bool(xp_of(a).isfinite(a).all())


def labels(y, batch, n_classes, name="labels"):
    """Class indices ``y`` [batch] in [0, n_classes) as int64 (on ``y``'s own device; a list becomes
    NumPy). The one label check of every loss (see the module docstring)."""
    from .backend import is_cupy_array, xp_of
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    xp = xp_of(y)
    y = xp.asarray(y)
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "b":
            raise TypeError(f"{name} must be integer class indices, got booleans; use {name}.astype(int)")
        if y.dtype.kind == "f" and y.size and all_finite(y) and bool((y == xp.floor(y)).all()):
            hint = f"they are whole numbers: pass {name}.astype(np.int64)"
        else:
            hint = "a class index is an integer 0 .. n_classes - 1"
        raise TypeError(f"{name} must have an integer dtype, got {y.dtype} ({hint}); a float label would be "
                        "truncated to a wrong class")
    if tuple(y.shape) != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), one class index per sample of the batch of "
                         f"{batch}; got shape {tuple(y.shape)}")
    if batch:
        lo, hi = (int(v) for v in (y.min(), y.max())) if not is_cupy_array(y) else \
            (int(v) for v in xp.stack([y.min(), y.max()]).get())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} must lie in [0, {n_classes}) for {n_classes} output classes; found {bad}. "
                             "Check the data set's labels and the network's number of outputs.")
    return y.astype(xp.int64, copy=False)


def _memory_limit(xp) -> tuple[int, str]:
    if xp is not np:
        free, total = xp.cuda.Device().mem_info
        return int(total), "GPU memory"
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "RAM"
    except (ValueError, OSError, AttributeError):
        return 1 << 40, "RAM"                          # unknown: 1 TiB


def allocation(nbytes, what, fix, xp=np) -> None:
    """ValueError before allocating ``nbytes`` that cannot fit into the machine's memory at all
    (instead of a MemoryError deep inside NumPy, or minutes of swapping)."""
    limit, kind = _memory_limit(xp)
    if nbytes > limit:
        raise ValueError(f"{what} would need {nbytes / 2**30:.3g} GiB, more than the {limit / 2**30:.3g} GiB of "
                         f"{kind} of this machine. {fix}")
