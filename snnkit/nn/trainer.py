"""The training loop every method uses: batches, optimizer steps, metrics, early stopping,
checkpoints and exact resume.

A *model* has ``forward(x)``, ``backward(grad)``, ``layers`` (each with ``params``/``grads`` and
optionally ``buffers``) and optionally ``train()``/``eval()``. A *loss* is a callable
``loss(output, labels) -> (value, dL/doutput)`` with ``predict(output) -> labels``. An optional
``encode(x_batch, rng) -> model input`` turns a data batch into spikes; it receives a Generator
seeded by (seed, epoch, batch), so stochastic encoders are reproducible and resumable too (an
encoder must draw from that generator, not from a global one).

Randomness without saved generator state: shuffling uses one permutation per epoch drawn from
``default_rng([seed, epoch])`` and the encoder's generator is ``default_rng([seed, epoch, batch,
train])``. Every random stream is a pure function of the seed and the counters (epoch, batch within
the epoch), so the checkpoint holds the complete random state as those counters. A run resumed from
a checkpoint, written at the end of an epoch or, with ``checkpoint_every=n``, after every n-th
optimizer step in the middle of an epoch, continues bit-for-bit like an uninterrupted one (on the
CPU): parameters, buffers, optimizer moments, the lr, the running sums of the unfinished epoch, the
history and the early-stopping state are all in the file.

Checkpoints are ``np.savez`` files (no pickle) written to ``<path>.tmp`` and renamed, so an
interrupted write never leaves a file that looks complete.

NaN/Inf: after each step the loss and every gradient are checked (one ``isfinite`` per array; set
``check_finite=False`` to skip). Only when a check fails does the trainer look for the culprit: it
re-runs that batch's forward (loss failed) or backward (gradient failed) with each layer's method
wrapped by a check, and names the first layer whose input was finite and whose result was not.
Normal training pays nothing for this diagnosis.

Device fast path (``device_data``, on by default on the GPU): when the encoder can encode on the
device (it has ``prepare(x)`` and ``on_device(x_dev_batch, rng)``, e.g. BATS's ``latency_encoder``)
the training set is checked once on the host and uploaded once; each batch is gathered and encoded
on the GPU. A step then needs one host sync, like the benchmark step (benchmarks/bench_bats.py):
the loss, the number of correct predictions and the finiteness of the loss and of every gradient
are computed on the device and read back together, before the optimizer step, so a NaN is still
caught before it reaches the weights and diagnosed as above. The loss gets the labels as NumPy (checked
on the host, uploaded without a sync). ``evaluate`` takes the same path (one readout for the whole set). Batch order, encoder generators and checkpoints are those of the plain
path; on the CPU ``device_data=True`` runs the same code on NumPy (the tests compare both paths).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..backend import to_numpy, xp_of, get_xp

__all__ = ["Trainer", "NonFiniteError", "accuracy", "iterate_batches"]


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/Inf; the message names the layer and the step."""


def accuracy(pred, labels) -> float:
    return float((to_numpy(pred) == to_numpy(labels)).mean())


def iterate_batches(n: int, batch_size: int, seed: int | None = None, epoch: int = 0, shuffle=True):
    """Index arrays of consecutive batches; the permutation depends only on (seed, epoch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.random.default_rng([seed or 0, epoch]).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _layer_name(i, layer):
    return f"layer {i} ({getattr(layer, 'name', None) or type(layer).__name__})"


def _finite(obj) -> bool:
    """No NaN/Inf in ``obj`` (an array, a scalar, a tuple/list/dict of them, or a spike container).
    Spike times (anything with ``.times``) are +inf padded, so there only NaN and -inf count."""
    if obj is None:
        return True
    if isinstance(obj, (tuple, list)):
        return all(_finite(o) for o in obj)
    if isinstance(obj, dict):
        return all(_finite(o) for o in obj.values())
    times = getattr(obj, "times", None)
    if times is not None:
        xp = xp_of(times)
        return not bool((xp.isnan(times) | (times == -xp.inf)).any())
    if isinstance(obj, (bool, int)):
        return True
    if isinstance(obj, (float, np.number)):
        return bool(np.isfinite(obj))
    dtype = getattr(obj, "dtype", None)
    if dtype is not None and getattr(obj, "shape", None) is not None:
        if np.dtype(dtype).kind not in "fc":
            return True
        return bool(xp_of(obj).isfinite(obj).all())
    return True


def _step_stats(value, correct, grads):
    """``(loss, correct, loss finite, every gradient finite)`` of a step, read back in one sync:
    the three device numbers are written into one small array and copied at once."""
    xp = xp_of(correct)
    if xp is np:
        v = float(value)
        return v, int(correct), bool(np.isfinite(v)), all(bool(np.isfinite(g).all()) for g in grads)
    out = xp.empty(3, dtype=xp.float64)
    out[0] = value
    out[1] = correct
    ok = None
    for g in grads:
        f = xp.isfinite(g).all()
        ok = f if ok is None else ok & f
    out[2] = True if ok is None else ok
    v, c, gok = out.get().tolist()
    return v, int(c), bool(np.isfinite(v)), bool(gok)


class _Found(Exception):
    """Stops a diagnostic re-run at the first non-finite result."""


_MISSING = object()
_ZERO = (0.0, 0.0, 0, 0.0)      # running sums of an unfinished epoch: loss*n, acc*n, n, seconds


class Trainer:
    def __init__(self, model, loss, optimizer, *, batch_size=32, encode=None, seed=0,
                 checkpoint=None, patience=None, monitor="val_acc", progress=True,
                 lr_schedule=None, check_finite=True, eval_batch_size=None, min_delta=0.0,
                 checkpoint_every=None, device_data="auto"):
        self.model, self.loss, self.opt = model, loss, optimizer
        if device_data not in ("auto", True, False):
            raise ValueError(f"device_data must be 'auto' (on for a GPU backend and a device-capable encoder), "
                             f"True or False; got {device_data!r}")
        self.device_data = device_data
        self._uploads = {}                  # id(x) -> (x, x_dev, y_dev): each data set uploaded once
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or max(batch_size, 256))
        self.encode = encode
        self.seed = int(seed)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1 (optimizer steps), got {checkpoint_every}")
        # also write the checkpoint after every n-th optimizer step (mid-epoch), not only per epoch
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every else None
        self.patience = patience
        if monitor not in ("val_acc", "val_loss"):
            raise ValueError("monitor must be 'val_acc' or 'val_loss'")
        self.monitor = monitor
        self.min_delta = float(min_delta)   # an improvement smaller than this does not count
        self.progress = progress
        self.lr_schedule = lr_schedule      # callable epoch -> lr, or None
        self.check_finite = check_finite
        self.history: dict[str, list] = {"epoch": [], "train_loss": [], "train_acc": [],
                                          "val_loss": [], "val_acc": [], "time": []}
        self.epoch = 0
        self.step_count = 0
        self.batch_in_epoch = 0             # next batch of the current epoch (0 = at an epoch boundary)
        self._partial = _ZERO               # running sums of the current epoch up to ``batch``
        self._data_shape = None             # (n_train, batch_size) of the epoch in progress
        self.best = None
        self.best_epoch = -1
        self.stopped_early = False

    # -- one batch ------------------------------------------------------------------------------
    def _input(self, x, epoch, batch_idx, train):
        if self.encode is None:
            return get_xp().asarray(x)
        r = np.random.default_rng([self.seed, epoch, batch_idx, int(train)])
        return self.encode(x, r)

    def _where(self):
        return f"at epoch {self.epoch}, step {self.step_count}"

    def train_step(self, x, y, batch_idx=0):
        if hasattr(self.model, "train"):
            self.model.train()
        inp = self._input(x, self.epoch, batch_idx, True)
        out = self.model.forward(inp)
        y_dev = xp_of(out if not hasattr(out, "times") else out.times).asarray(y)
        value, grad = self.loss(out, y_dev)
        if self.check_finite and not np.isfinite(value):
            raise NonFiniteError(self._explain_loss(value, inp, y_dev))
        self.model.backward(grad)
        if self.check_finite and not self._grads_finite():
            raise NonFiniteError(self._explain_grads(grad))
        self.opt.step()
        self.step_count += 1
        return value, accuracy(self.loss.predict(out), y)

    # -- device fast path ------------------------------------------------------------------------
    def _device_source(self, x, y):
        """``(x_dev, y_dev)`` (uploaded once per data set) when the fast path applies, else None."""
        enc = self.encode
        capable = enc is not None and hasattr(enc, "prepare") and hasattr(enc, "on_device")
        if self.device_data is False or (self.device_data == "auto" and get_xp() is np):
            return None
        if not capable or not isinstance(x, np.ndarray):
            if self.device_data is True:
                raise ValueError("device_data=True needs an encoder with prepare() and on_device() (e.g. "
                                 "snnkit.bats.latency_encoder) and the features as a NumPy array; use "
                                 "device_data='auto' to fall back to the per-batch path.")
            return None
        hit = self._uploads.get(id(x))
        if hit is None or hit[0] is not x or len(hit[2]) != len(y):
            hit = (x, enc.prepare(x), get_xp().asarray(np.asarray(y)))
            if len(self._uploads) >= 3:         # train, validation, test at most stay on the device
                self._uploads.pop(next(iter(self._uploads)))
            self._uploads[id(x)] = hit
            if len(hit[1]) != len(y):
                raise ValueError(f"x has {len(hit[1])} samples but y has {len(y)} labels")
        return hit[1], hit[2]

    def _encode_device(self, x_dev, rows, epoch, batch_idx, train):
        uses_rng = getattr(self.encode, "uses_rng", True)
        r = np.random.default_rng([self.seed, epoch, batch_idx, int(train)]) if uses_rng else None
        return self.encode.on_device(x_dev[rows], r)

    def _train_step_device(self, src, rows, y_host, batch_idx):
        """One step on device-resident data; ``rows`` indexes the uploaded set (a device array),
        ``y_host`` are the same labels as NumPy: the loss checks them on the host and uploads them
        without a sync (as in the benchmark step), ``y_dev[rows]`` serves the accuracy."""
        x_dev, y_dev = src
        if hasattr(self.model, "train"):
            self.model.train()
        inp = self._encode_device(x_dev, rows, self.epoch, batch_idx, True)
        out = self.model.forward(inp)
        vg = getattr(self.loss, "value_and_grad", None)
        value, grad = vg(out, y_host) if vg is not None else self.loss(out, y_host)
        self.model.backward(grad)
        correct = (self.loss.predict(out) == y_dev[rows]).sum()
        grads = [g for layer in self.model.layers for g in getattr(layer, "grads", {}).values()
                 if np.dtype(g.dtype).kind in "fc"] if self.check_finite else []
        # the step's one host sync (the benchmark step reads its loss once, too)
        value, correct, loss_ok, grads_ok = _step_stats(value, correct, grads)
        if self.check_finite and not loss_ok:
            raise NonFiniteError(self._explain_loss(value, inp, y_dev[rows]))
        if self.check_finite and not grads_ok:
            raise NonFiniteError(self._explain_grads(grad))
        self.opt.step()
        self.step_count += 1
        return value, correct / len(y_host)

    def _evaluate_device(self, src, y_host):
        xp = get_xp()
        x_dev, y_dev = src
        n = len(y_dev)
        loss_sum, correct = xp.zeros((), xp.float64), xp.zeros((), xp.int64)
        vg = getattr(self.loss, "value_and_grad", None)
        for j, start in enumerate(range(0, n, self.eval_batch_size)):
            rows = slice(start, min(start + self.eval_batch_size, n))
            out = self.model.forward(self._encode_device(x_dev, rows, 0, j, False))
            value, _ = vg(out, y_host[rows]) if vg is not None else self.loss(out, y_host[rows])
            loss_sum += xp.asarray(value, dtype=xp.float64) * (rows.stop - rows.start)
            correct += (self.loss.predict(out) == y_dev[rows]).sum()
        if hasattr(self.model, "train"):
            self.model.train()
        return float(loss_sum) / n, int(correct) / n

    # -- NaN/Inf diagnosis (runs only after a check failed) ------------------------------------
    def _grads_finite(self) -> bool:
        for layer in self.model.layers:
            for g in getattr(layer, "grads", {}).values():
                if not bool(xp_of(g).isfinite(g).all()):
                    return False
        return True

    def _trace(self, method, run):
        """Call ``run()`` with ``layer.<method>`` of every layer wrapped by a check; return
        ``(i, layer, what)`` for the first call whose input was finite and whose result (the
        output, the returned gradient or the layer's grads) was not, ``(i, layer, "input")`` when a
        layer was handed a non-finite input that no layer produced, or None. Best effort: an
        exception of the re-run is swallowed and the wrappers are always removed again."""
        found, patched = [], []

        def wrap(i, layer, fn):
            def checked(*args, **kwargs):
                if args and not _finite(args[0]):
                    found.append((i, layer, "input"))
                    raise _Found
                res = fn(*args, **kwargs)
                if method == "backward":
                    for k, g in getattr(layer, "grads", {}).items():
                        if not _finite(g):
                            found.append((i, layer, f"gradient '{k}'"))
                            raise _Found
                if not _finite(res):
                    found.append((i, layer, "output" if method == "forward" else "returned gradient"))
                    raise _Found
                return res
            return checked

        for i, layer in enumerate(self.model.layers):
            fn = getattr(layer, method, None)
            if fn is None:
                continue
            own = getattr(layer, "__dict__", {}).get(method, _MISSING)   # an instance attribute to restore
            try:
                setattr(layer, method, wrap(i, layer, fn))
            except (AttributeError, TypeError):
                continue
            patched.append((layer, own))
        try:
            run()
        except Exception:   # noqa: BLE001 - _Found, or an error of the re-run: the diagnosis must
            pass            # not hide the NaN error
        finally:
            for layer, own in patched:
                if own is _MISSING:
                    delattr(layer, method)
                else:
                    setattr(layer, method, own)
        return found[0] if found else None

    def _explain_loss(self, value, inp, y_dev) -> str:
        where = self._where()
        if not _finite(inp):
            return (f"the model input (the batch after encoding) contains NaN/Inf {where}, so the loss "
                    f"became {value}. Check the data and the encoder.")
        # re-run the forward layer by layer on this batch; buffers (running statistics) are restored
        saved = [(b, to_numpy(b).copy()) for layer in self.model.layers
                 for b in getattr(layer, "buffers", {}).values()]
        try:
            hit = self._trace("forward", lambda: self.model.forward(inp))
        finally:
            for b, v in saved:
                b[...] = xp_of(b).asarray(v)
        if hit is None:
            return (f"the loss became {value} {where} although every layer's forward output is finite: the "
                    "loss itself overflowed. Check the scale of the outputs and the loss settings.")
        i, layer, what = hit
        if what == "input":
            return (f"the input of {_layer_name(i, layer)} is NaN/Inf {where} although every earlier layer's "
                    f"output was finite (computed between layers, e.g. a residual sum); the loss became {value}.")
        return (f"{_layer_name(i, layer)} returned a NaN/Inf forward output from a finite input {where} "
                f"(the loss became {value}). Lower the learning rate or check that layer's weights and settings.")

    def _explain_grads(self, grad) -> str:
        where = self._where()
        bad = [(i, layer, k) for i, layer in enumerate(self.model.layers)
               for k, g in getattr(layer, "grads", {}).items() if not bool(xp_of(g).isfinite(g).all())]
        others = ", ".join(dict.fromkeys(_layer_name(i, layer) for i, layer, _ in bad))
        if not _finite(grad):
            return (f"the gradient of the loss is NaN/Inf {where} although the loss is finite; layers with "
                    f"NaN/Inf gradients: {others}. Check the loss.")
        hit = self._trace("backward", lambda: self.model.backward(grad))
        if hit is not None and hit[2] != "input":
            i, layer, what = hit
            if what == "returned gradient":
                head = f"the backward of {_layer_name(i, layer)} returned a NaN/Inf input gradient {where}"
            else:
                head = f"{what} of {_layer_name(i, layer)} is NaN/Inf {where}"
            return (f"{head}, from a finite incoming gradient (the first layer the backward reached with a "
                    f"finite gradient that produced NaN/Inf; layers with NaN/Inf gradients: {others}). "
                    "Lower the learning rate or check the layer's settings.")
        i, layer, k = bad[-1]   # no re-run possible: the last layer in order is the one backward reaches first
        return (f"gradient '{k}' of {_layer_name(i, layer)} is NaN/Inf {where} (layers with NaN/Inf "
                f"gradients: {others}). Lower the learning rate or check the layer's settings.")

    def evaluate(self, x, y):
        """(mean loss, accuracy) over a data set, batch by batch, in eval mode."""
        if hasattr(self.model, "eval"):
            self.model.eval()
        src = self._device_source(x, y) if len(y) else None
        if src is not None:
            return self._evaluate_device(src, np.asarray(y))
        losses, correct = 0.0, 0
        for j, idx in enumerate(iterate_batches(len(y), self.eval_batch_size, shuffle=False)):
            out = self.model.forward(self._input(x[idx], 0, j, False))
            yb = y[idx]
            y_dev = xp_of(out if not hasattr(out, "times") else out.times).asarray(yb)
            value, _ = self.loss(out, y_dev)
            losses += value * len(idx)
            correct += int((to_numpy(self.loss.predict(out)) == to_numpy(yb)).sum())
        if hasattr(self.model, "train"):
            self.model.train()
        return losses / len(y), correct / len(y)

    # -- epochs ---------------------------------------------------------------------------------
    def fit(self, train, val=None, epochs=10, resume=False):
        """Train for ``epochs`` (total, counting epochs already done when resuming). A run stopped
        in the middle of an epoch (resumed from a ``checkpoint_every`` checkpoint, or ``fit`` called
        again after an interruption) continues that epoch at the next batch."""
        x_tr, y_tr = train
        if resume:
            if self.checkpoint is None:
                raise ValueError("resume=True needs checkpoint=<path> in the Trainer")
            if self.checkpoint.exists():
                self.load(self.checkpoint)
        shape = (len(y_tr), self.batch_size)
        if self.batch_in_epoch and self._data_shape is not None and tuple(self._data_shape) != shape:
            raise ValueError(
                f"the run stopped in the middle of epoch {self.epoch} with {self._data_shape[0]} training samples "
                f"in batches of {self._data_shape[1]}; it cannot continue with {len(y_tr)} samples in batches of "
                f"{self.batch_size} (the batches would differ).")
        from tqdm.auto import tqdm
        src = self._device_source(x_tr, y_tr) if len(y_tr) else None
        y_np = np.asarray(y_tr) if src is not None else None
        while self.epoch < epochs and not self.stopped_early:
            if self.lr_schedule is not None:
                self.opt.lr = float(self.lr_schedule(self.epoch))
            t0 = time.perf_counter()
            batches = list(iterate_batches(len(y_tr), self.batch_size, self.seed, self.epoch))
            self._data_shape = shape
            start = self.batch_in_epoch
            tot, acc, n, spent = self._partial
            bar = tqdm(batches[start:], desc=f"epoch {self.epoch + 1}/{epochs}", leave=False,
                       disable=not self.progress, initial=start, total=len(batches))
            if src is not None and batches:
                order_dev = get_xp().asarray(np.concatenate(batches))   # the epoch's order, one upload
            for j, idx in enumerate(bar, start):
                if src is None:
                    v, a = self.train_step(x_tr[idx], y_tr[idx], j)
                else:      # batch j is order[j * batch_size:][:len(idx)] (iterate_batches' slices)
                    pos = j * self.batch_size
                    v, a = self._train_step_device(src, order_dev[pos:pos + len(idx)], y_np[idx], j)
                tot += float(v) * len(idx)
                acc += a * len(idx)
                n += len(idx)
                self.batch_in_epoch, self._partial = j + 1, (tot, acc, n, spent + time.perf_counter() - t0)
                bar.set_postfix(loss=f"{tot / n:.4f}", acc=f"{acc / n:.3f}")
                if (self.checkpoint is not None and self.checkpoint_every
                        and self.step_count % self.checkpoint_every == 0 and j + 1 < len(batches)):
                    self.save(self.checkpoint)
            h = self.history
            h["epoch"].append(self.epoch + 1)
            h["train_loss"].append(tot / n)
            h["train_acc"].append(acc / n)
            if val is not None:
                vl, va = self.evaluate(*val)
            else:
                vl, va = float("nan"), float("nan")
            h["val_loss"].append(vl)
            h["val_acc"].append(va)
            h["time"].append(spent + time.perf_counter() - t0)
            self.epoch += 1
            self.batch_in_epoch, self._partial, self._data_shape = 0, _ZERO, None
            self._early_stopping(vl, va)
            if self.checkpoint is not None:
                self.save(self.checkpoint)
        return self.history

    def _early_stopping(self, vl, va):
        score = va if self.monitor == "val_acc" else -vl
        if not np.isfinite(score):
            return
        if self.best is None or score > self.best + self.min_delta:
            self.best, self.best_epoch = score, self.epoch
        elif self.patience is not None and self.epoch - self.best_epoch >= self.patience:
            self.stopped_early = True

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        d = {}
        for i, layer in enumerate(self.model.layers):
            for k, p in getattr(layer, "params", {}).items():
                d[f"param/{i}/{k}"] = to_numpy(p)
            for k, b in getattr(layer, "buffers", {}).items():
                d[f"buffer/{i}/{k}"] = to_numpy(b)
        d.update(self.opt.state_dict())
        # every random stream is a function of (seed, epoch, batch): these counters are the rng state
        meta = {"epoch": self.epoch, "step": self.step_count, "batch": self.batch_in_epoch,
                "partial": [float(self._partial[0]), float(self._partial[1]), int(self._partial[2]),
                            float(self._partial[3])],
                "data_shape": list(self._data_shape) if self._data_shape else None,
                "best": None if self.best is None else float(self.best),
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
                "history": self.history, "seed": self.seed}
        d["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return d

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:           # a file object, so savez cannot append ".npz"
            np.savez(f, **self.state_dict())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def load(self, path) -> None:
        """Restore a checkpoint, including its seed (the run's random streams derive from it)."""
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        for key, arr in d.items():
            kind, *rest = key.split("/")
            if kind in ("param", "buffer"):
                i, k = int(rest[0]), rest[1]
                layer = self.model.layers[i]
                store = layer.params if kind == "param" else layer.buffers
                if tuple(store[k].shape) != arr.shape:
                    raise ValueError(f"checkpoint {path}: {kind} '{k}' of {_layer_name(i, layer)} has shape "
                                     f"{arr.shape}, the model has {tuple(store[k].shape)}; the architecture differs.")
                store[k][...] = xp_of(store[k]).asarray(arr)
        self.opt.load_state_dict(d)
        meta = json.loads(bytes(d["meta"]).decode())
        self.epoch, self.step_count = meta["epoch"], meta["step"]
        self.batch_in_epoch = meta.get("batch", 0)
        self._partial = tuple(meta.get("partial") or _ZERO)
        self._data_shape = tuple(meta["data_shape"]) if meta.get("data_shape") else None
        self.seed = int(meta.get("seed", self.seed))
        self.best, self.best_epoch = meta["best"], meta["best_epoch"]
        self.stopped_early = meta["stopped_early"]
        self.history = meta["history"]
