"""Claims of the lessons: a sentence that depends on a computed result, printed with its numbers.

A notebook never states a measured fact in prose alone. It computes the numbers, then calls

    claim("tdBN trains the 12-layer plain stack, no normalization does not",
          acc["tdbn"] > acc["none"] + 0.2, f"tdBN {acc['tdbn']:.3f}, none {acc['none']:.3f}")

which prints ``✓ claim: ... (tdBN 0.931, none 0.100)`` right under the cell. If the claim does not
hold (a student changed a parameter, or the code changed), a learner sees ``✗ claim does NOT hold
with these settings`` instead: the page never hides a contradiction. Under the tests and the tour
(``SNNKIT_STRICT_CLAIMS=1``, set by ``make test``, ``tests/conftest.py`` and :mod:`snnkit.tour`) a
claim that does not hold raises :class:`ClaimFailed`, so the notebook fails its test: every claim
of every lesson is guarded on the notebook's own defaults.
"""
from __future__ import annotations

import os

__all__ = ["claim", "strict", "ClaimFailed"]

STRICT_ENV = "SNNKIT_STRICT_CLAIMS"


class ClaimFailed(AssertionError):
    """A lesson's claim does not hold for the numbers it was given (strict mode only)."""


def strict() -> bool:
    """True when claims and exercise checks must fail loudly (tests, the tour)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


def claim(text: str, holds, shown: str = "") -> bool:
    """Print ``text`` as a claim with the numbers ``shown`` that support it; return whether it holds.

    ``holds`` is the test of the claim (anything with a truth value, e.g. a NumPy bool). Strict mode
    (:func:`strict`) raises :class:`ClaimFailed` when it is false; otherwise the failure is printed."""
    ok = bool(holds)
    numbers = f" ({shown})" if shown else ""
    if ok:
        print(f"✓ claim: {text}{numbers}")
    else:
        msg = f"✗ claim does NOT hold with these settings: {text}{numbers}"
        if strict():
            raise ClaimFailed(msg)
        print(msg)
    return ok
