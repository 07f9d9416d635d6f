"""Exercises of notebook 05 (time discretization of a BATS network).

Every check computes its truth with snnkit itself: the grid rule is
:func:`snnkit.bats.neuron.grid_up` (the one the simulation applies to input and output spikes), and
the fall-off step is :func:`snnkit.bats.study.falloff_dt` on the notebook's own sweep.
"""
from __future__ import annotations

import numpy as np

from . import unanswered, verdict

__all__ = ["grid_time_ms", "merge_dt_ms", "report_steps", "check_dt_grid_time", "check_dt_merge", "check_dt_falloff",
           "check_dt_report_steps"]


def grid_time_ms(t_ms, dt_ms):
    """The grid time (ms) at which snnkit reports a spike whose continuous time is ``t_ms``:
    the next grid point strictly after it, ``(floor(t / dt) + 1) dt`` (``grid_up``)."""
    from ..bats.neuron import grid_up
    if not (np.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a positive grid step in ms; got {dt_ms!r}")
    # rounded to 1e-9 ms: the grid index times dt, without the float noise of the ms <-> s conversion
    return round(float(grid_up(np.asarray(t_ms, dtype=np.float64) / 1000.0, dt_ms / 1000.0) * 1000.0), 9)


def merge_dt_ms(t1_ms, t2_ms, max_dt_ms=100):
    """The smallest whole-ms grid step at which two crossings of one neuron, at ``t1_ms`` and
    ``t2_ms``, get the same grid time, so that the one-step refractory period lets only the first
    through; None if no step up to ``max_dt_ms`` merges them."""
    if not (t1_ms < t2_ms):
        raise ValueError(f"give the two crossings in order, t1_ms < t2_ms; got {t1_ms} and {t2_ms}")
    for dt in range(1, int(max_dt_ms) + 1):
        if grid_time_ms(t1_ms, dt) == grid_time_ms(t2_ms, dt):
            return dt
    return None


def report_steps(dt_ms, t_max_ms, layer):
    """How many grid times spiking layer ``layer`` (1 = the first after the data) can report a spike at,
    within the window: the earliest is ``(layer + 1) dt`` (the data move up to at least ``dt``, and every
    layer reports the next grid point after a crossing that follows its input), the latest the last grid
    point ``<= t_max`` (a later one is not emitted). At most one spike per step, so this is also the most
    spikes one neuron of that layer can report."""
    if not (dt_ms > 0 and t_max_ms > 0 and int(layer) == layer and layer >= 1):
        raise ValueError(f"need dt_ms > 0, t_max_ms > 0 and a layer number >= 1; got {dt_ms}, {t_max_ms}, {layer}")
    last = int(np.floor(t_max_ms / dt_ms + 1e-9))    # t_max on a grid line counts (grid_up's tolerance)
    return max(0, last - int(layer))


def _numbers(answer, n):
    try:
        a = np.asarray(answer, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return a if a.size == n and np.all(np.isfinite(a)) else None


def check_dt_grid_time(answer, t_star_ms=(23.0, 25.0), dt_ms=5.0):
    """Exercise: the grid times (ms) reported for continuous crossings ``t_star_ms`` on a grid of
    ``dt_ms``. ``answer``: one number per crossing, in ms."""
    t_star = np.atleast_1d(np.asarray(t_star_ms, dtype=np.float64))
    truth = np.array([grid_time_ms(t, dt_ms) for t in t_star])
    a = None if unanswered(answer) else _numbers(answer, truth.size)
    ok = a is not None and np.allclose(a, truth, rtol=0, atol=1e-6)
    if a is None or ok:
        hint = f"give {truth.size} numbers in ms, one per crossing, e.g. ({', '.join(['...'] * truth.size)})."
    elif np.any(a < t_star - 1e-9):
        hint = ("a grid time is never earlier than the crossing it reports: the spike cannot be seen before "
                "it happened, so the grid rounds UP.")
    elif np.any(np.isclose(a, t_star)):
        hint = ("snnkit reports the next grid point STRICTLY after t* (the study's t + (dt - fmod(t, dt))): "
                "a crossing exactly on a grid line moves a whole step.")
    else:
        hint = "take the next multiple of dt after each t*: (floor(t*/dt) + 1) * dt."
    return verdict("dt_grid_time", answer, ok,
                   right=f"on a {dt_ms:g} ms grid the crossings {', '.join(f'{t:g}' for t in t_star)} ms are "
                         f"reported at {', '.join(f'{t:g}' for t in truth)} ms: every spike moves later, by up "
                         "to one step, and one exactly on a grid line by a whole step.",
                   wrong=hint)


def check_dt_merge(answer, t1_ms=31.0, t2_ms=38.0, max_dt_ms=100):
    """Exercise: the smallest whole-ms dt at which one neuron's crossings at ``t1_ms`` and ``t2_ms``
    share a grid time (and the second is therefore rejected). ``answer``: that dt in ms."""
    truth = merge_dt_ms(t1_ms, t2_ms, max_dt_ms)
    a = None if unanswered(answer) else _numbers(answer, 1)
    ok = a is not None and truth is not None and abs(a[0] - truth) < 1e-9
    if a is None:
        hint = "answer with one number: the grid step in whole ms."
    elif a[0] <= t2_ms - t1_ms:
        hint = (f"two times {t2_ms - t1_ms:g} ms apart can share a step only if the step is longer than "
                f"{t2_ms - t1_ms:g} ms; then check where the grid lines fall.")
    elif a[0] > truth:
        hint = (f"a smaller step already puts both crossings in one step: try the whole-ms steps above "
                f"{t2_ms - t1_ms:g} ms one by one, computing (floor(t/dt) + 1) dt for both.")
    else:
        hint = (f"at dt = {a[0]:g} ms a grid line falls between {t1_ms:g} and {t2_ms:g} ms: the two are reported "
                f"at {grid_time_ms(t1_ms, a[0]):g} and {grid_time_ms(t2_ms, a[0]):g} ms.")
    right = (f"at dt = {truth} ms both are reported at {grid_time_ms(t1_ms, truth):g} ms, so the second is "
             "rejected (one spike per step). Being longer than their distance is necessary, not enough: "
             "whether they merge depends on where the grid lines fall.") if truth is not None else ""
    return verdict("dt_merge", answer, ok, right=right, wrong=hint)


def check_dt_falloff(answer, rows, drop=0.05):
    """Exercise: read the sweep ``rows``: the smallest dt (ms) whose test accuracy is more than
    ``drop`` below the continuous network's (None if none). ``answer``: that dt in ms, or None."""
    from ..bats.study import falloff_dt
    fall = falloff_dt(rows, drop=drop)
    truth = None if fall is None else 1000.0 * fall
    if answer is None and truth is None:          # "never falls" is a real answer here
        return verdict("dt_falloff", "none", True, right=f"accuracy never falls more than {100 * drop:g} "
                       "points below continuous on this sweep.", wrong="")
    a = None if unanswered(answer) else _numbers(answer, 1)
    ok = a is not None and truth is not None and abs(a[0] - truth) < 1e-6
    if a is None:
        hint = "answer with one number in ms (a dt of the sweep)."
    elif truth is None:
        hint = f"look again: no dt of this sweep is more than {100 * drop:g} points below continuous (answer None)."
    elif a[0] > truth:
        hint = "a smaller dt of the sweep is already more than the drop below continuous: scan dt upward."
    else:
        hint = f"at {a[0]:g} ms the accuracy is still within {100 * drop:g} points of continuous, or it is not a dt of the sweep."
    return verdict("dt_falloff", answer, ok,
                   right=f"the first step {100 * drop:g} points below continuous is dt = {truth:g} ms." if truth else "",
                   wrong=hint)


def check_dt_report_steps(answer, dts_ms=(7.0, 8.0), t_max_ms=200.0, layer=2):
    """Exercise: on each grid of ``dts_ms``, at how many grid times can the output layer (spiking layer
    ``layer``) of a network with window ``t_max_ms`` report a spike? ``answer``: one count per grid."""
    truth = np.array([report_steps(d, t_max_ms, layer) for d in dts_ms], dtype=np.float64)
    a = None if unanswered(answer) else _numbers(answer, truth.size)
    ok = a is not None and np.array_equal(a, truth)
    whole = truth + layer                 # the grid times up to t_max counted from dt: the first ones forgotten
    if a is None or ok:
        hint = f"give {truth.size} whole numbers, one per grid ({', '.join(f'{d:g} ms' for d in dts_ms)})."
    elif np.array_equal(a, whole) or np.array_equal(a, whole + 1):
        hint = (f"the output layer cannot report at the first grid times: the data arrive at dt at the earliest and "
                f"every layer adds at least one step, so layer {layer} reports at {layer + 1} dt at the earliest.")
    elif np.array_equal(a, truth + 1) or np.array_equal(a, truth - 1):
        hint = (f"count both ends: from {layer + 1} dt up to the last grid point that is not after t_max = "
                f"{t_max_ms:g} ms (a grid time past t_max is not reported).")
    else:
        hint = f"list the grid times k dt with {layer + 1} dt <= k dt <= t_max, for each dt, and count them."
    return verdict("dt_report_steps", answer, ok,
                   right=f"on the {', '.join(f'{d:g}' for d in dts_ms)} ms grids the output layer can report at "
                         f"{', '.join(f'{int(n)}' for n in truth)} grid times within {t_max_ms:g} ms, at most one "
                         "spike per step: that many spikes per neuron at most, whatever the weights.",
                   wrong=hint)
