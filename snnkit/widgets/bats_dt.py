"""The dt slider of notebook 05: one trained BATS network, one input, run at any grid step.

``DtExplorer(model, x, encode, label)`` runs the network once in continuous time. Its plain
callback ``figures(dt_ms)`` re-runs the same weights on the grid ``dt`` and returns two figures:
the rasters of every spiking layer (continuous vs grid spikes) and the membrane potential of one
output neuron in both networks. ``panel()`` wires the callback to a slider; the notebook also calls
``figures`` directly, so the content exists headless too.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..bats.neuron import potential
from ..bats.study import continuous_times, set_dt


class DtExplorer:
    def __init__(self, model, x, encode, label=None, neuron=None, t_end=None, n_points=400):
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"x must be ONE sample's features (1-d); got shape {x.shape}. Pass x[i].")
        self.model, self.encode = model, encode
        self.input = encode(x[None], np.random.default_rng(0))
        self.layers = [(i, l) for i, l in enumerate(model.layers) if hasattr(l, "tau_s")]
        if not self.layers:
            raise ValueError("model has no BATS layers to explore")
        self.dt0 = [l.dt for _, l in self.layers]
        self.continuous = self._run(None)
        out_layer = self.layers[-1][1]
        self.neuron = int(label if neuron is None and label is not None else (neuron or 0))
        self.t_end = t_end or float(min(out_layer.t_max, 0.25))
        self.t = np.linspace(0.0, self.t_end, n_points)

    def _run(self, dt):
        """Per spiking layer: (discrete output, continuous times or None, weight, Simulation)."""
        set_dt(self.model, dt)
        try:
            s = self.input
            res = {}
            for i, layer in enumerate(self.model.layers):
                s = layer.forward(s)
                if hasattr(layer, "tau_s"):
                    res[i] = (s, continuous_times(layer), to_numpy(layer.params["weight"]), layer.last)
            return res
        finally:
            for (_, l), d in zip(self.layers, self.dt0):
                l.dt = d

    def _trace(self, run):
        """u(t) of the chosen output neuron: inputs as the simulation used them (grid times with dt),
        resets at the continuous crossings (the reset uses z*), spikes as the network reports them."""
        i, layer = self.layers[-1]
        out, cont, w, sim = run[i]
        used = to_numpy(sim.in_used)[0]                              # [N_in, S_in]
        wi = np.repeat(w[self.neuron], used.shape[1])
        t_reset = to_numpy(sim.t_cont)[0, self.neuron]
        u = potential(self.t, used.ravel(), wi, t_reset, layer.tau_s, layer.delta_theta)
        return u, to_numpy(out.times)[0, self.neuron]

    def figures(self, dt_ms=5.0):
        """(raster figure, membrane figure) for a grid step of ``dt_ms`` milliseconds (0 = continuous)."""
        from ..viz.bats_dt import membrane_compare, raster_compare
        if not (dt_ms >= 0):
            raise ValueError(f"dt_ms must be >= 0 (0 = continuous time); got {dt_ms}")
        dt = None if dt_ms == 0 else dt_ms / 1000.0
        disc = self._run(dt)
        names = [f"layer {i}: {type(l).__name__} ({l.n_out} neurons)" for i, l in self.layers]
        fig_r = raster_compare([self.continuous[i][0] for i, _ in self.layers],
                               [disc[i][0] for i, _ in self.layers], names, dt=dt)
        u_c, s_c = self._trace(self.continuous)
        u_d, s_d = self._trace(disc)
        fig_m = membrane_compare(self.t, u_c, u_d, s_c, s_d, self.layers[-1][1].theta, dt=dt,
                                 title=f"Output neuron {self.neuron}: continuous vs dt = {dt_ms:g} ms")
        return fig_r, fig_m

    def summary(self, dt_ms):
        """Spike counts per layer and the mean |t_d - t| of the discretized run (for a printout)."""
        dt = None if dt_ms == 0 else dt_ms / 1000.0
        disc = self._run(dt)
        out = []
        for i, _ in self.layers:
            s, cont, _, _ = disc[i]
            n = int(to_numpy(s.counts).sum())
            n_c = int(to_numpy(self.continuous[i][0].counts).sum())
            shift = 0.0
            if cont is not None:
                tc, td = to_numpy(cont.times), to_numpy(s.times)
                both = np.isfinite(tc) & np.isfinite(td)
                shift = float(np.abs(td[both] - tc[both]).mean()) if both.any() else 0.0
            out.append({"layer": i, "spikes": n, "spikes_continuous": n_c, "mean_abs_shift_ms": 1000 * shift})
        return out

    def panel(self, max_ms=40.0, step_ms=0.5, value_ms=5.0):
        """A dt slider (ms) redrawing both figures below it (snnkit.widgets.interactive_figure: one
        figure each, redrawn in place live; precomputed in the tour's static page)."""
        import ipywidgets as widgets
        from . import interactive_figure
        return interactive_figure(self.figures, dt_ms=widgets.FloatSlider(
            value=value_ms, min=0.0, max=max_ms, step=step_ms, description="dt (ms)", continuous_update=False))


__all__ = ["DtExplorer"]
