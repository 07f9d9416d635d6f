"""The delta panel of the S3GD notebook, and the work accounting of its speed section.

``DeltaExplorer(net, x, y)`` runs one forward and the dense backward once. Its plain callback
``figure(delta)`` recomputes only the sparse backward at the new band half-width (the forward is
shared, so dense and sparse see the same potentials) and returns one figure: the membrane
histogram with the band, the cosine(dense, sparse) of each hidden layer against delta with the
current delta marked, and one layer's dense and sparse weight gradients. ``panel()`` wires it to a
log-scale delta slider through :func:`snnkit.widgets.interactive_figure`; the notebook also calls
``figure`` and ``summary`` directly, so everything exists headless too.

:func:`backward_work` counts what the dense and the sparse backward of the last forward touch.
"""
from __future__ import annotations

import time

import numpy as np

from ..backend import to_numpy
from ..s3gd.instruments import cosine, weight_gradients
from ..s3gd.sparse import active_set
from ..viz.s3gd import delta_figure

__all__ = ["DeltaExplorer", "backward_work", "DELTA_EXPONENTS"]

# The slider: delta = 10^e for e = -3, -2.9, ..., -0.3 (0.001 ... 0.5). Below ~0.01 the band holds too few
# entries and the sparse gradient loses its direction; above 0.5 the sparse backward is no longer sparse
# (and the callback gets slow on a CPU).
DELTA_EXPONENTS = (-3.0, -0.3, 0.1)


class DeltaExplorer:
    def __init__(self, net, x, y, layer="hidden2"):
        self.net, self.x, self.y, self.layer = net, x, y, layer
        self.delta0 = net.delta
        self.dense = weight_gradients(net, x, y, sparse=False)          # also runs the forward
        self.potentials = {h.name: h.V for h in net.hidden}
        self._curve = None

    def summary(self, delta):
        """Active fractions and cosines at ``delta`` (dict), without figures. A layer whose band is
        empty has a zero sparse gradient: no direction, so its cosine is reported as 0 (it keeps none
        of the dense gradient's direction) rather than as 0/0."""
        if not delta > 0:
            raise ValueError(f"delta must be > 0 (the half-width of the band |V - 1| < delta); got {delta}")
        self.net.delta = delta
        try:
            t0 = time.perf_counter()
            sparse = weight_gradients(self.net, self.x, self.y, sparse=True, forward=False)
            ms = 1e3 * (time.perf_counter() - t0)
            frac = {h.name: h.active_set().fraction for h in self.net.hidden}
        finally:
            self.net.delta = self.delta0
        cos = {k: cosine(self.dense[k], sparse[k]) for k in self.dense}
        cos = {k: 0.0 if np.isnan(v) and not np.any(sparse[k]) else v for k, v in cos.items()}
        return dict(delta=delta, active=frac, cosine=cos, sparse=sparse, backward_ms=ms)

    def min_cosine(self, delta) -> float:
        """The smallest cosine(dense, sparse) over the hidden layers at ``delta`` (an empty band: 0)."""
        cos = self.summary(delta)["cosine"]
        return float(min(cos[h.name] for h in self.net.hidden))

    def curve(self, deltas=None) -> dict:
        """Cosines and active fractions of the hidden layers over ``deltas`` (default: the slider's
        values; computed once and kept, the forward being fixed)."""
        if deltas is None:
            if self._curve is None:
                lo, hi, step = DELTA_EXPONENTS
                self._curve = self.curve(10.0 ** np.arange(lo, hi + step / 2, step))
            return self._curve
        names = [h.name for h in self.net.hidden]
        out = {"delta": [float(d) for d in deltas], "cosine": {n: [] for n in names}, "active": {n: [] for n in names}}
        for d in deltas:
            s = self.summary(float(d))
            for n in names:
                out["cosine"][n].append(s["cosine"][n])
                out["active"][n].append(s["active"][n])
        return out

    def figure(self, delta=0.2):
        """The panel's figure at band half-width ``delta`` (see the module docstring)."""
        s = self.summary(delta)
        hidden = [h.name for h in self.net.hidden]
        return delta_figure(self.potentials, self.net.hidden[0].threshold, delta, self.dense, s["sparse"],
                            {k: s["cosine"][k] for k in hidden}, s["active"], self.curve(), self.layer)

    def panel(self, value=None):
        """A log-scale delta slider (0.001 ... 0.5) redrawing :meth:`figure`."""
        import ipywidgets as widgets
        from . import interactive_figure
        lo, hi, step = DELTA_EXPONENTS
        value = self.delta0 if value is None else value
        slider = widgets.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=step, description="delta",
                                        continuous_update=False, readout_format=".3f")
        return interactive_figure(self.figure, delta=slider)


def backward_work(net, delta=None) -> dict:
    """What one backward of the net's last forward touches, dense vs sparse, per hidden layer.

    A hidden layer of width N with n_in inputs, on B samples of T steps; A its active set at ``delta``
    (default: the net's), |A_b| its entries of sample b, Q the active set of the layer below (the
    first hidden layer needs no input gradient)::

        entries of dL/dh formed     dense  B T N            sparse |A|
        multiply-adds, dW           dense  B T n_in N       sparse |A| n_in
        multiply-adds, dL/dS_in     dense  B T N n_in       sparse sum_b |A_b| |Q_b|
        gradient bytes kept         dense  (B T N + B T n_in) s            (the dense d and dL/dS_in)
                                    sparse |A| (12 + 2 s) + 8 (B N + 1) + |Q| s  (entry b, t, j, V, g;
                                                                                  offsets; dL/dS_in at Q)

    with s the bytes of one value. Counted from the shapes and the active sets (nothing is timed);
    the readout is the same in both modes and left out. Returns {layer: {"entries", "macs",
    "bytes": (dense, sparse)}, "total": {...}}."""
    hidden = list(net.hidden)
    d = net.delta if delta is None else float(delta)
    sets = [active_set(h.V, h.threshold, d) for h in hidden]
    out, total = {}, {"entries": [0, 0], "macs": [0, 0], "bytes": [0, 0]}
    for i, (h, A) in enumerate(zip(hidden, sets)):
        B, T, N = (int(v) for v in h.V.shape)
        n_in, s = h.n_in, np.dtype(h.dtype).itemsize
        nA = A.n
        Q = sets[i - 1] if i > 0 else None
        dense_macs = B * T * n_in * N + (B * T * N * n_in if Q is not None else 0)
        sparse_macs = nA * n_in
        dense_bytes = B * T * N * s + (B * T * n_in * s if Q is not None else 0)
        sparse_bytes = nA * (12 + 2 * s) + 8 * (B * N + 1)
        if Q is not None:
            per_b = lambda S: np.diff(to_numpy(S.offsets)[::S.shape[2]])            # entries per sample
            sparse_macs += int((per_b(A) * per_b(Q)).sum())
            sparse_bytes += Q.n * s
        row = {"entries": (B * T * N, nA), "macs": (dense_macs, sparse_macs), "bytes": (dense_bytes, sparse_bytes)}
        out[h.name] = row
        for k in total:
            total[k][0] += row[k][0]
            total[k][1] += row[k][1]
    out["total"] = {k: tuple(v) for k, v in total.items()}
    return out
