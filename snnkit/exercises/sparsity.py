"""Exercise checks of notebook 04 (gradient sparsity, S3GD).

The truths are computed from :mod:`snnkit.s3gd` on the notebook's own network and batch:

- :func:`check_breaking_delta`: the band half-width below which the sparse gradient loses its
  direction, i.e. where the cosine(dense, sparse) of some hidden layer drops below 0.9. An answer
  ``d`` is right when the cosine is below 0.9 at ``d`` but not any more at ``2 d`` (the crossing lies
  in ``[d, 2d)``: a factor of two, the resolution of a coarse sweep).
- :func:`check_band_for_share`: the delta whose band holds a given share of a layer's entries
  (the active set is computed by :func:`snnkit.s3gd.active_set`, the same one the backward uses);
  right within 10 % of the share.
"""
from __future__ import annotations


from . import unanswered, verdict

FLOOR = 0.9


def _positive(answer, name):
    try:
        d = float(answer)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: the answer is one number, a band half-width delta > 0; got {answer!r}") from None
    if not d > 0:
        raise ValueError(f"{name}: delta must be > 0 (the half-width of |V - 1| < delta); got {answer!r}")
    return d


def check_breaking_delta(answer, explorer, floor=FLOOR):
    """``answer``: the largest delta (to a factor of 2) at which some hidden layer's cosine(dense,
    sparse) is below ``floor``; ``explorer``: the notebook's :class:`snnkit.widgets.s3gd.DeltaExplorer`."""
    name = "where the sparse gradient breaks"
    if unanswered(answer):
        return verdict(name, answer, False, "", "")
    d = _positive(answer, name)
    at, above = explorer.min_cosine(d), explorer.min_cosine(2 * d)
    ok = at < floor <= above
    if at >= floor:
        hint = (f"at delta = {d:g} every hidden layer still has cosine >= {floor:g} (lowest {at:.3f}): "
                "the band still keeps the gradient's direction. Look at narrower bands.")
    else:
        hint = (f"at delta = {d:g} the cosine is below {floor:g} ({at:.3f}), but at {2 * d:g} it is too "
                f"({above:.3f}): the crossing is at a wider band. Sweep delta upwards and take the last one below {floor:g}.")
    return verdict(name, answer, ok,
                   right=f"cosine {at:.3f} at delta = {d:g}, {above:.3f} at {2 * d:g}: below the crossing only a few "
                         "entries per layer are kept, and which ones they are decides the direction.",
                   wrong=hint)


def check_band_for_share(answer, V, share=0.01, threshold=1.0):
    """``answer``: the delta whose band |V - threshold| < delta holds ``share`` of the entries of V."""
    from ..s3gd.sparse import active_set
    name = f"the band that holds {100 * share:g}% of the entries"
    if unanswered(answer):
        return verdict(name, answer, False, "", "")
    d = _positive(answer, name)
    got = active_set(V, threshold, d).fraction
    ok = abs(got - share) <= 0.1 * share
    return verdict(name, answer, ok,
                   right=f"delta = {d:.4g} keeps {100 * got:.3f}% of the entries: the {100 * share:g}% quantile of "
                         "|V - 1|. The sparse weight gradient then does that share of the dense one's multiply-adds.",
                   wrong=f"delta = {d:g} keeps {100 * got:.3f}% of the entries, not {100 * share:g}%. The band holds the "
                         "entries with |V - 1| < delta: which quantile of |V - 1| is the right delta?")
