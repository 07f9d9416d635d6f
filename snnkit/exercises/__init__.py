"""Exercise checks of the notebooks: ``snnkit.exercises.check_<name>(answer)``.

Each notebook's exercises live in their own module here (``welcome.py``, ``clocks.py``, ...); every
``check_*`` function of those modules is importable from this package. A check is built with
:func:`verdict`:

- ``...`` (the Ellipsis of the exercise cell) or ``None`` -> says what to fill in, returns None;
- a right answer -> ``✓`` and why it is right, returns True;
- a wrong answer -> ``✗`` and a hint that says what is off, returns False; in strict mode (tests,
  the tour: see :mod:`snnkit.lessons`) it raises, so a hidden solution that stops passing its own
  check fails the notebook's test.
"""
from __future__ import annotations

import importlib
import math
import pkgutil

from ..lessons import ClaimFailed, strict

__all__ = ["verdict", "unanswered", "number", "ExerciseFailed"]


class ExerciseFailed(ClaimFailed):
    """A checked answer is wrong (strict mode only: a solution cell that no longer passes)."""


def unanswered(answer) -> bool:
    """True for the placeholders of an exercise cell (``...`` or None)."""
    return answer is Ellipsis or answer is None


def number(answer) -> float | None:
    """``answer`` as a finite float, or None when it is not a number (a string, NaN, inf, an array):
    the checks then say "not yet" instead of raising at the student."""
    try:
        v = float(answer)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def verdict(name: str, answer, ok, right: str, wrong: str) -> bool | None:
    """Print and return the verdict on ``answer`` for exercise ``name``.

    ``ok``: whether it is right (ignored when ``answer`` is a placeholder); ``right``: why it is
    right; ``wrong``: a hint that says what is off and how to think about it (no solution)."""
    if unanswered(answer):
        print(f"… {name}: replace the `...` with your answer, then run the cell again.")
        return None
    if bool(ok):
        print(f"✓ {name}: right. {right}")
        return True
    msg = f"✗ {name}: not yet. {wrong}"
    if strict():
        raise ExerciseFailed(msg)
    print(msg)
    return False


def _load_checks() -> list[str]:
    names = []
    for mod in pkgutil.iter_modules(__path__):
        m = importlib.import_module(f"{__name__}.{mod.name}")
        for k in dir(m):
            if k.startswith("check_"):
                if k in globals():
                    raise ImportError(f"two exercise modules define {k}; rename one")
                globals()[k] = getattr(m, k)
                names.append(k)
    return names


__all__ += _load_checks()
