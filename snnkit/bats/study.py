"""Measuring what time discretization does to a BATS network: metrics and a dt sweep.

A BATS layer with ``dt`` set keeps two times per output spike (see the dense layer): the
*continuous* crossing t* of its event loop and the *discrete* t_d = ceil-to-grid(t*), the time the
next layer, the loss and the prediction see. The study asks how much of the continuous network
survives when every spike is forced onto a grid of step dt:

* accuracy                 (prediction on discrete times)
* silent-output share      fraction of samples on which no output neuron fires: the network
                           predicts nothing there, which counts as wrong, so accuracy can fall below
                           chance (1 / classes) and is bounded by 1 - silent-output share
* spikes per layer         mean number of spikes a sample causes in the layer (sparsity)
* silent share             fraction of (sample, neuron) pairs that never fire
* latency curve            share of the label neuron's spikes emitted at or before t, over a grid
                           of t (a faster network reaches 1 earlier); with ``target`` the share of
                           the target count, as in the time-discretization study
* mean |t_d - t|           per layer, the average distance a spike is moved by the grid (0 for
                           dt=None, at most dt)

``evaluate`` measures one trained network; ``sweep`` trains and measures one per dt and returns a
*tidy* table: a list of rows (dicts), one per (dt, layer), every metric a column, the network-wide
values (accuracy, train time) repeated on each row of that dt. ``columns(rows)`` turns it into a
dict of lists for plotting.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .. import checks
from ..backend import to_numpy, xp_of
from ..spikes import SpikeTrains
from .neuron import LIFParameters

__all__ = ["build_network", "set_dt", "spike_stats", "latency_curve", "discretization_shift", "evaluate", "sweep", "columns",
           "falloff_dt"]


def build_network(spec, input_shape, theta, max_spikes, tau_s, t_max, dt=None, seed=0, init=(-1.0, 1.0),
                  dtype=np.float32):
    """A BATS network from the paper's notation, e.g. ``"800-10"`` or ``"15C5-P2-40C5-P2-300-10"``.

    ``NcK``: ConvLIF with N maps and a K x K kernel; ``P2``: 2x2 spike-merge pooling; ``N``: LIFDense
    with N neurons. ``theta`` and ``max_spikes`` list one value per spiking layer (delta_theta = theta,
    as in the paper); ``input_shape`` is (H, W, C) for conv networks or an int (flat inputs).
    Layer k is seeded with ``seed + k``, so the same seed gives the same network for every dt.
    """
    from .conv import ConvLIF
    from .layers import LIFDense, Network, SpikeInput
    from .pool import SpikePool2d
    parts = [p.strip().upper() for p in str(spec).split("-") if p.strip()]
    n_spiking = sum(1 for p in parts if not p.startswith("P"))
    theta, max_spikes = list(np.atleast_1d(theta)), [int(m) for m in np.atleast_1d(max_spikes)]
    if len(theta) != n_spiking or len(max_spikes) != n_spiking:
        raise ValueError(f"spec {spec!r} has {n_spiking} spiking layers: give that many theta and max_spikes "
                         f"values (got {len(theta)} and {len(max_spikes)})")
    shape = tuple(input_shape) if np.ndim(input_shape) else (int(input_shape),)
    n_in = int(np.prod(shape))
    layers, k = [SpikeInput(n_in, dtype)], 0
    for p in parts:
        if p.startswith("P"):
            if p != "P2" or len(shape) != 3:
                raise ValueError(f"{p!r}: only 2x2 pooling ('P2') after a conv layer is supported")
            layers.append(SpikePool2d(shape))
            shape = layers[-1].output_shape
            continue
        kw = dict(neuron=LIFParameters(tau_s, theta[k], max_spikes=max_spikes[k], t_max=t_max, dt=dt), init=init,
                  seed=seed + k, dtype=dtype)
        if "C" in p:
            if len(shape) != 3:
                raise ValueError(f"{p!r}: a conv layer needs an (H, W, C) input_shape, got {shape}")
            n, ks = (int(v) for v in p.split("C"))
            layers.append(ConvLIF(shape, n, ks, **kw))
            shape = layers[-1].output_shape
        else:
            if not p.isdigit():
                raise ValueError(f"cannot read layer {p!r} of spec {spec!r} (use e.g. 800, 15C5, P2)")
            layers.append(LIFDense(int(np.prod(shape)), int(p), **kw))
            shape = (int(p),)
        k += 1
    return Network(layers)


def set_dt(model, dt):
    """Put every BATS layer of ``model`` on the grid ``dt`` (None: continuous); returns the model.

    Discretization is a property of the simulation, not of the weights: a network trained at one
    dt can be run at another (the dt slider of notebook 05 does exactly that)."""
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be None (continuous time) or a positive time step; got {dt!r}")
    layers = [layer for layer in model.layers if isinstance(getattr(layer, "neuron", None), LIFParameters)]
    # all checked before any is changed (dt < t_max, as at construction)
    moved = [layer.neuron.replace(dt=None if dt is None else float(dt)) for layer in layers]
    for layer, neuron in zip(layers, moved):
        layer.neuron = neuron
    if not layers:
        raise ValueError("model has no BATS layers (LIFDense / ConvLIF) whose dt could be set")
    return model


def spike_stats(spikes: SpikeTrains) -> dict:
    """Sparsity of one layer's output over a batch."""
    c = to_numpy(spikes.counts).astype(np.float64)          # [B, N]
    if c.ndim != 2 or c.size == 0:
        raise ValueError(f"spikes.counts must be a non-empty [batch, neurons] array; got shape {c.shape}")
    return {"spikes_per_sample": float(c.sum(axis=1).mean()),
            "spikes_per_neuron": float(c.mean()),
            "silent_share": float((c == 0).mean()),
            "overflow": 0 if spikes.overflow is None else int(to_numpy(spikes.overflow).sum())}


def latency_curve(out: SpikeTrains, labels, t_grid, target: int | None = None):
    """Share of the label neuron's spikes emitted at or before each t of ``t_grid``.

    Without ``target``: spikes before t / all spikes of the label neuron, pooled over the batch
    (1 at the end by construction; how fast it gets there is the latency). With ``target`` (the
    spike-count loss's target for the true class): mean over samples of min(n(<= t), target) / target,
    the definition of the time-discretization study.
    """
    t = to_numpy(out.times)
    labels = checks.labels(np.asarray(to_numpy(labels)), t.shape[0], t.shape[1])
    t_grid = np.asarray(t_grid, dtype=np.float64)
    lab = t[np.arange(len(labels)), labels]                   # [B, S]
    before = (lab[:, :, None] <= t_grid[None, None, :]).sum(axis=1)   # [B, G] (inf never counts)
    if target is None:
        total = np.isfinite(lab).sum()
        return before.sum(axis=0) / total if total else np.zeros(len(t_grid))
    if target < 1:
        raise ValueError(f"target must be >= 1 spikes (the true class's target count); got {target}")
    return (np.minimum(before, target) / float(target)).mean(axis=0)


def discretization_shift(continuous: SpikeTrains | None, discrete: SpikeTrains) -> float:
    """Mean |t_d - t| over the spikes of one layer (same run, same slots); 0 without discretization."""
    if continuous is None:
        return 0.0
    tc, td = to_numpy(continuous.times), to_numpy(discrete.times)
    if tc.shape != td.shape:
        raise ValueError(f"continuous and discrete times must have the same shape; got {tc.shape} and {td.shape}")
    both = np.isfinite(tc) & np.isfinite(td)
    return float(np.abs(td[both] - tc[both]).mean()) if both.any() else 0.0


def _layer_name(i, layer):
    return getattr(layer, "name", None) or f"{i}:{type(layer).__name__}"


def _spiking(layer):
    return bool(getattr(layer, "params", None))            # pooling layers have no weights


def evaluate(model, x, y, encode, loss, t_grid=None, batch_size=256, target=None):
    """Run ``model`` (a network with ``.layers``) over (x, y) and measure everything above.

    ``encode(x_batch, rng)`` makes the input spikes (the Trainer's encoder). Returns
    ``(summary, per_layer, latency)``: summary dict (accuracy, loss, silent_output_share: the
    share of samples on which the output layer emits no spike, scored as wrong), a list of per-layer dicts
    (spiking layers only) and the latency curve over ``t_grid``.
    """
    if hasattr(model, "eval"):
        model.eval()
    layers = list(model.layers)
    names = [_layer_name(i, l) for i, l in enumerate(layers)]
    acc = {i: {"counts": [], "silent": [], "shift_sum": 0.0, "shift_n": 0, "overflow": 0}
           for i, l in enumerate(layers) if _spiking(l)}
    outs, correct, tot_loss, n, silent_out = [], 0, 0.0, 0, 0
    rng = np.random.default_rng(0)
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], np.asarray(y[start:start + batch_size])
        s = encode(xb, rng)
        for i, layer in enumerate(layers):
            s = layer.forward(s)
            if i in acc:
                a = acc[i]
                c = to_numpy(s.counts)
                a["counts"].append(c.sum(axis=1))
                a["silent"].append((c == 0).mean(axis=1))
                a["overflow"] += 0 if s.overflow is None else int(to_numpy(s.overflow).sum())
                cont = continuous_times(layer)
                if cont is not None:
                    tc, td = to_numpy(cont.times), to_numpy(s.times)
                    both = np.isfinite(tc) & np.isfinite(td)
                    a["shift_sum"] += float(np.abs(td[both] - tc[both]).sum())
                    a["shift_n"] += int(both.sum())
        value, _ = loss(s, xp_of(s.times).asarray(yb))
        tot_loss += value * len(yb)
        correct += int((to_numpy(loss.predict(s)) == yb).sum())
        silent_out += int((to_numpy(s.counts).sum(axis=1) == 0).sum())   # no output spike: no prediction
        n += len(yb)
        outs.append(SpikeTrains(to_numpy(s.times), to_numpy(s.counts)))
    if hasattr(model, "train"):
        model.train()
    per_layer = []
    for i, a in acc.items():
        counts = np.concatenate(a["counts"])
        per_layer.append({"layer": names[i], "layer_index": i,
                          "spikes_per_sample": float(counts.mean()),
                          "spikes_per_neuron": float(counts.mean() / max(layers[i].n_out, 1))
                          if hasattr(layers[i], "n_out") else float("nan"),
                          "silent_share": float(np.concatenate(a["silent"]).mean()),
                          "mean_abs_shift": a["shift_sum"] / a["shift_n"] if a["shift_n"] else 0.0,
                          "overflow": a["overflow"]})
    lat = None
    if t_grid is not None:
        S = max(o.times.shape[2] for o in outs)
        pad = [np.concatenate([o.times, np.full(o.times.shape[:2] + (S - o.times.shape[2],), np.inf)], axis=2)
               for o in outs]
        all_out = SpikeTrains(np.concatenate(pad), np.concatenate([o.counts for o in outs]))
        lat = latency_curve(all_out, np.asarray(y), t_grid, target)
    return {"accuracy": correct / n, "loss": tot_loss / n, "silent_output_share": silent_out / n}, per_layer, lat


def continuous_times(layer):
    """The continuous spike times of a layer's last forward (same shape as its output), or None
    for a continuous layer (dt=None) or a layer without a simulation (pooling, input)."""
    if getattr(layer, "dt", None) is None:
        return None
    cont = getattr(layer, "continuous", None)         # ConvLIF: already laid out as its output map
    if cont is not None:
        return cont
    sim = getattr(layer, "last", None)                # LIFDense: the Simulation of the last forward
    return None if sim is None else SpikeTrains(sim.t_cont, sim.counts)


def sweep(dts, build, train, test, *, epochs, encode, loss_fn, optimizer, batch_size=32,
          t_grid=None, target=None, seed=0, val=None, progress=False, on_result=None, keep_models=False,
          lr_schedule=None, checkpoint=None, checkpoint_every=1000):
    """Train one network per dt and measure it; returns ``(rows, latency)`` (and ``models``, a
    {dt: trained model} dict, with ``keep_models=True``).

    ``build(dt, seed) -> model``; ``optimizer(model) -> optimizer``; ``loss_fn`` the loss object.
    ``rows``: tidy table, one row per (dt, spiking layer) with dt, seed, accuracy, the share of
    test samples with a silent output layer, test loss, train seconds and the per-layer metrics. ``latency``: {dt: curve over t_grid}.
    ``on_result(dt, rows_of_dt)`` is called after each dt (progress printing in notebooks);
    ``lr_schedule(epoch) -> lr`` is handed to the Trainer.

    ``checkpoint``: a folder that makes the sweep resumable. Each dt trains with a Trainer checkpoint
    ``dt_<ms>.npz`` there (written after every epoch and every ``checkpoint_every`` optimizer steps;
    a rerun continues it where it stopped, with the same batches, as ``Trainer.fit(resume="auto")``
    does), and a finished dt writes ``dt_<ms>.json`` (its rows and latency curve): a rerun loads
    that dt's trained weights and its measurements instead of training it again. The train seconds
    of a resumed dt are the sum of its epochs' times over all sessions. Rerun with the same
    settings (the Trainer refuses a checkpoint of another optimizer or seed).
    """
    from ..nn import Trainer
    dts = list(dts)
    if not dts:
        raise ValueError("dts must list at least one time step (None for the continuous network)")
    for d in dts:
        if d is not None and not (np.isfinite(d) and d > 0):
            raise ValueError(f"every dt must be None (continuous) or a positive step; got {d!r}")
    rows, latency, models = [], {}, {}
    folder = None if checkpoint is None else Path(checkpoint)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for d in dts:
        model = build(d, seed)
        tag = f"dt_{0.0 if d is None else 1000 * float(d):g}ms_seed{seed}"
        ckpt = None if folder is None else folder / f"{tag}.npz"
        done = None if folder is None else folder / f"{tag}.json"
        tr = Trainer(model, loss_fn, optimizer(model), batch_size=batch_size, encode=encode, seed=seed,
                     progress=progress, lr_schedule=lr_schedule, checkpoint=ckpt,
                     checkpoint_every=checkpoint_every if ckpt is not None else None)
        if done is not None and done.exists() and ckpt.exists():
            rec = json.loads(done.read_text())
            if rec.get("epochs") != epochs:
                raise ValueError(f"{done} holds a dt trained for {rec.get('epochs')} epochs, this sweep asks for "
                                 f"{epochs}: give another checkpoint folder (or delete it to train again)")
            tr.load(ckpt, weights_only=True)             # the trained weights of the finished dt
            new, lat = rec["rows"], None if rec["latency"] is None else np.asarray(rec["latency"])
            print(f"[sweep] dt {tag}: finished in an earlier session, loaded from {done}")
        else:
            t0 = time.perf_counter()
            tr.fit(train, val=val, epochs=epochs, resume="auto" if ckpt is not None else False)
            secs = time.perf_counter() - t0 if ckpt is None else float(sum(tr.history["time"]))
            summary, per_layer, lat = evaluate(model, *test, encode=encode, loss=loss_fn, t_grid=t_grid,
                                               target=target)
            new = [{"dt": 0.0 if d is None else float(d), "continuous": d is None, "seed": seed,
                    "accuracy": summary["accuracy"], "silent_output_share": summary["silent_output_share"],
                    "test_loss": summary["loss"], "train_seconds": secs,
                    **pl} for pl in per_layer]
            if done is not None:
                tmp = done.with_name(done.name + ".tmp")
                tmp.write_text(json.dumps({"epochs": epochs, "rows": new, "history": tr.history,
                                           "latency": None if lat is None else np.asarray(lat).tolist()}))
                os.replace(tmp, done)
        latency[d] = lat
        if keep_models:
            models[d] = model
        rows += new
        if on_result is not None:
            on_result(d, new)
    return (rows, latency, models) if keep_models else (rows, latency)


def columns(rows):
    """Tidy rows -> {column: list}."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: [r.get(k) for r in rows] for k in keys}


def falloff_dt(rows, reference_accuracy=None, drop=0.05):
    """Smallest dt whose accuracy is more than ``drop`` below the reference (the continuous run,
    else the best), or None if accuracy never falls that far."""
    acc = {}
    for r in rows:
        acc[r["dt"]] = r["accuracy"]
    if reference_accuracy is None:
        cont = [r["accuracy"] for r in rows if r.get("continuous")]
        reference_accuracy = cont[0] if cont else max(acc.values())
    for d in sorted(acc):
        if acc[d] < reference_accuracy - drop:
            return d
    return None
