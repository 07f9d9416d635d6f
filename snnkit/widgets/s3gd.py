"""The delta slider of the S3GD notebook.

``DeltaExplorer(net, x, y)`` runs one forward and the dense backward once. Its plain callback
``update(delta)`` recomputes only the sparse backward at the new band half-width (the forward is
shared, so dense and sparse see the same potentials) and returns the membrane histogram with the
band, the dense vs sparse gradient maps and a one-line summary. ``panel()`` wires it to a slider;
the notebook also calls ``update`` directly, so everything exists headless too.
"""
from __future__ import annotations

import time

from ..s3gd.instruments import cosine, weight_gradients
from ..viz.s3gd import gradient_maps, membrane_histogram


class DeltaExplorer:
    def __init__(self, net, x, y, layer="hidden2"):
        self.net, self.x, self.y, self.layer = net, x, y, layer
        self.delta0 = net.delta
        self.dense = weight_gradients(net, x, y, sparse=False)          # also runs the forward
        self.potentials = {h.name: h.V for h in net.hidden}

    def summary(self, delta):
        """Active fractions and cosines at ``delta`` (dict), without figures."""
        self.net.delta = delta
        try:
            t0 = time.perf_counter()
            sparse = weight_gradients(self.net, self.x, self.y, sparse=True, forward=False)
            ms = 1e3 * (time.perf_counter() - t0)
            frac = {h.name: h.active_set().fraction for h in self.net.hidden}
        finally:
            self.net.delta = self.delta0
        cos = {k: cosine(self.dense[k], sparse[k]) for k in self.dense}
        return dict(delta=delta, active=frac, cosine=cos, sparse=sparse, backward_ms=ms)

    def update(self, delta=0.2):
        """(histogram figure, gradient-map figure, text) at band half-width ``delta``."""
        s = self.summary(delta)
        text = (f"delta = {delta:g}: active " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in s["active"].items())
                + "; cosine(dense, sparse) " + ", ".join(f"{k} {v:.3f}" for k, v in s["cosine"].items())
                + f"; sparse backward {s['backward_ms']:.1f} ms")
        return (membrane_histogram(self.potentials, self.net.hidden[0].threshold, delta),
                gradient_maps(self.dense, s["sparse"], s["cosine"], self.layer), text)

    def panel(self, deltas=(0.01, 0.5, 0.01), value=0.2):
        """A delta slider redrawing both figures and the summary line (snnkit.widgets.interactive_figure:
        live in JupyterLab, precomputed in the tour's static page)."""
        import ipywidgets as widgets
        from . import interactive_figure
        return interactive_figure(self.update, delta=widgets.FloatSlider(
            value=value, min=deltas[0], max=deltas[1], step=deltas[2], description="delta",
            continuous_update=False, readout_format=".2f"))
