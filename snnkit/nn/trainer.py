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

Resume rules (``fit(..., resume=True)`` or ``load(path)``). A checkpoint continues *the same run*,
so what defines the run must match, and a mismatch is a :class:`CheckpointError` (a ValueError)
raised before anything is assigned:

* the file must exist (``resume=True``; ``resume="auto"`` starts from scratch when it does not,
  and says so) and be a checkpoint written by this Trainer (a corrupt, truncated or foreign file
  is named as such);
* the model: exactly the same parameters and buffers (layer index, name, shape); a checkpoint of
  a 1-layer network does not load into a 2-layer one, nor one with another readout size;
* the optimizer: the same type and settings (lr it was built with, betas/eps, momentum); its
  state (Adam's m and v, SGD's velocity) must be the optimizer's own. The *current* lr, which a
  schedule may have changed, is part of the state and is restored;
* the Trainer's ``seed`` (every random stream derives from it).

To continue from a checkpoint's weights with other settings, start a new run from them:
``trainer.load(path, weights_only=True)`` restores parameters and buffers only (checked the same
way) and leaves the optimizer, counters and history fresh.

NaN/Inf: every step checks the model input (after encoding), the loss and every gradient, and the
parameters after the update (and once before the first step of ``fit``); ``check_finite=False``
skips all of it. The checks of one kind are fused into one reduction (one device sync on a GPU).
This covers the paths where a NaN never reaches the loss (a NaN weight or input silences a spiking
neuron: the S3GD sparse backward and a BATS layer would otherwise train on at chance). Only when a
check fails does the trainer look for the culprit: it re-runs that batch's forward (loss failed)
or backward (gradient failed) with each layer's method wrapped by a check, and names the first
layer whose input was finite and whose result was not (:mod:`snnkit.nn.diagnose`). Normal
training pays nothing for this diagnosis.

Data: ``x`` and ``y`` of a split must have the same length (nothing is truncated) and hold at
least one sample.

Device fast path (``device_data``, on by default on the GPU): when the encoder can encode on the
device (it has ``prepare(x)`` and ``on_device(x_dev_batch, rng)``, e.g. BATS's ``latency_encoder``)
the training set is checked once on the host and uploaded once; each batch is gathered and encoded
on the GPU. ``x`` is a NumPy array, or what the encoder's ``device_input`` names (an ``EventData``
for ``snnkit.datasets.EventBinner``: the events are uploaded, each batch binned on the GPU); the
uploaded set needs ``len`` and ``x_dev[rows]`` (rows a device index array or a slice). A step then needs one host sync, like the benchmark step (benchmarks/bench_bats.py):
the loss, the number of correct predictions and the finiteness of the loss and of every gradient
(and of the parameters the step used) are computed on the device and read back together, before the optimizer step, so a NaN is still
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

from .. import checks
from ..backend import to_numpy, xp_of, get_xp
from .diagnose import (NonFiniteError, check_params, explain_grads, explain_loss, finite as _finite, grads_finite,
                       layer_name as _layer_name)

__all__ = ["Trainer", "NonFiniteError", "CheckpointError", "accuracy", "iterate_batches"]


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, foreign, or does not belong to this model / run."""


def accuracy(pred, labels) -> float:
    return float((to_numpy(pred) == to_numpy(labels)).mean())


def iterate_batches(n: int, batch_size: int, seed: int | None = None, epoch: int = 0, shuffle=True):
    """Index arrays of consecutive batches; the permutation depends only on (seed, epoch)."""
    batch_size = checks.integer("batch_size", batch_size, 1)
    order = np.random.default_rng([seed or 0, epoch]).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _n_samples(data, what):
    """len of a split (x, y) after checking that x and y have the same, non-zero length."""
    try:
        x, y = data
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a pair (x, y), e.g. tuple(load('digits', 'train'))") from None
    try:
        nx, ny = len(x), len(y)
    except TypeError:
        raise TypeError(f"{what}: x and y must be arrays (or an EventData) with a length") from None
    if nx != ny:
        raise ValueError(f"{what}: x has {nx} samples but y has {ny} labels; they must match one to one "
                         "(nothing is truncated silently).")
    if ny == 0:
        raise ValueError(f"{what} is empty (0 samples); pass at least one sample.")
    return ny


def _count_nonfinite(a) -> int:
    """n = sum_i [a_i is NaN or +-Inf]: the number of non-finite entries of one array (NumPy).
    NumPy twin of the CuPy kernel built by snnkit/nn/trainer.py::_nonfinite_kernel."""
    return int(np.count_nonzero(~np.isfinite(a)))


_NONFINITE = None


def _nonfinite_kernel():
    """CuPy ReductionKernel of ``_count_nonfinite`` (its NumPy twin is
    snnkit/nn/trainer.py::_count_nonfinite): one launch per array, its count written as float64
    into a slot of the caller's vector. Each entry is widened to double before ``isfinite``, so
    float16/32/64 all work; only NaN and +-Inf count, never a large finite value (a plain sum of
    the array would overflow to Inf on large finite entries and raise a false alarm)."""
    global _NONFINITE
    if _NONFINITE is None:
        import cupy as cp
        _NONFINITE = cp.ReductionKernel(
            "T x", "float64 n", "isfinite((double)x) ? 0.0 : 1.0", "a + b", "n = a", "0",
            "snnkit_count_nonfinite")
    return _NONFINITE


def _step_stats(value, correct, grads, params=()):
    """``(loss, correct, loss finite, every gradient finite, every parameter finite)`` of a step, read
    back in one sync. On a GPU every number lands in one small float64 vector,
    ``[loss, correct, n_nonfinite(grad_0), ..., n_nonfinite(param_0), ...]``, filled by one launch
    per array (``_nonfinite_kernel``) and copied back at once: 2 + len(grads) + len(params) small
    launches per step instead of three per array (isfinite, all, and-ing the flags)."""
    xp = xp_of(correct)
    if xp is np:
        v = float(value)
        return (v, int(correct), bool(np.isfinite(v)), all(_count_nonfinite(g) == 0 for g in grads),
                all(_count_nonfinite(p) == 0 for p in params))
    grads, params = list(grads), list(params)
    out = xp.empty(2 + len(grads) + len(params), dtype=xp.float64)
    out[0] = value
    out[1] = correct
    count = _nonfinite_kernel()
    for i, a in enumerate(grads + params):
        if np.dtype(a.dtype).kind == "f":
            count(a, out=out[2 + i])
        else:                                   # complex: CuPy's own isfinite (not in the kernel)
            out[2 + i] = (~xp.isfinite(a)).sum()
    host = out.get()
    g, p = host[2:2 + len(grads)], host[2 + len(grads):]
    return float(host[0]), int(host[1]), bool(np.isfinite(host[0])), bool((g == 0).all()), bool((p == 0).all())


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
        for nm, obj in (("model", model), ("loss", loss)):
            needs = ("forward", "backward", "layers") if nm == "model" else ("__call__", "predict")
            missing = [a for a in needs if not hasattr(obj, a)]
            if missing:
                raise TypeError(f"{nm} lacks {missing} (see the module docstring of snnkit.nn.trainer)")
        if not hasattr(optimizer, "step"):
            raise TypeError(f"optimizer must be an snnkit.nn optimizer (SGD, Adam), got {type(optimizer).__name__}")
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.eval_batch_size = checks.integer("eval_batch_size", eval_batch_size or max(self.batch_size, 256), 1)
        self.encode = encode
        self.seed = checks.integer("seed", seed, 0)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1 (optimizer steps), got {checkpoint_every}")
        # also write the checkpoint after every n-th optimizer step (mid-epoch), not only per epoch
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every else None
        self.patience = None if patience is None else checks.integer("patience", patience, 1)
        if monitor not in ("val_acc", "val_loss"):
            raise ValueError("monitor must be 'val_acc' or 'val_loss'")
        self.monitor = monitor
        self.min_delta = checks.nonnegative("min_delta", min_delta)   # an improvement smaller than this does not count
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
        if self.check_finite and not _finite(inp):
            raise NonFiniteError(f"the model input (the batch after encoding) contains NaN/Inf {self._where()}. "
                                 "Check the data and the encoder (a NaN input can silence a spiking layer "
                                 "instead of reaching the loss).")
        out = self.model.forward(inp)
        y_dev = xp_of(out if not hasattr(out, "times") else out.times).asarray(y)
        value, grad = self.loss(out, y_dev)
        if self.check_finite and not np.isfinite(value):
            raise NonFiniteError(explain_loss(self.model, value, inp, self._where()))
        self.model.backward(grad)
        if self.check_finite and not grads_finite(self.model.layers):
            raise NonFiniteError(explain_grads(self.model, grad, self._where()))
        self.opt.step()
        self.step_count += 1
        if self.check_finite:
            self._check_params("after the optimizer update of")
        return value, accuracy(self.loss.predict(out), y)

    # -- device fast path ------------------------------------------------------------------------
    def _device_source(self, x, y):
        """``(x_dev, y_dev)`` (uploaded once per data set) when the fast path applies, else None."""
        enc = self.encode
        capable = enc is not None and hasattr(enc, "prepare") and hasattr(enc, "on_device")
        if self.device_data is False or (self.device_data == "auto" and get_xp() is np):
            return None
        # what the encoder's prepare() takes: a NumPy array of features unless it says otherwise
        # (EventBinner: an EventData, whose batches it bins on the device)
        takes = getattr(enc, "device_input", np.ndarray)
        if not capable or not isinstance(x, takes):
            if self.device_data is True:
                raise ValueError("device_data=True needs an encoder with prepare() and on_device() (e.g. "
                                 "snnkit.bats.latency_encoder) and x of the type its prepare() takes (a NumPy "
                                 "array of features; an EventData for snnkit.datasets.EventBinner), got "
                                 f"{type(enc).__name__} and {type(x).__name__}; use device_data='auto' to fall "
                                 "back to the per-batch path.")
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
        floats = lambda arrays: [a for a in arrays if np.dtype(a.dtype).kind in "fc"]
        grads = floats(g for layer in self.model.layers for g in getattr(layer, "grads", {}).values()) \
            if self.check_finite else []
        params = floats(p for layer in self.model.layers for p in getattr(layer, "params", {}).values()) \
            if self.check_finite else []
        # the step's one host sync (the benchmark step reads its loss once, too); the parameters
        # checked are the ones this step used, i.e. the result of the previous update
        value, correct, loss_ok, grads_ok, params_ok = _step_stats(value, correct, grads, params)
        if self.check_finite and not params_ok:
            self._check_params("after the optimizer update of")
        if self.check_finite and not loss_ok:
            raise NonFiniteError(explain_loss(self.model, value, inp, self._where()))
        if self.check_finite and not grads_ok:
            raise NonFiniteError(explain_grads(self.model, grad, self._where()))
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

    # -- NaN/Inf: the parameter check; the diagnosis of a failed check is snnkit.nn.diagnose --------
    def _check_params(self, when):
        check_params(self.model.layers, when, self._where(), self.step_count, self.epoch)

    def evaluate(self, x, y):
        """(mean loss, accuracy) over a data set, batch by batch, in eval mode."""
        _n_samples((x, y), "evaluate(x, y)")
        if hasattr(self.model, "eval"):
            self.model.eval()
        src = self._device_source(x, y)
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
        again after an interruption) continues that epoch at the next batch.

        ``resume``: False (start from the model as it is), True (continue the run in ``checkpoint``;
        an error when the file is missing or belongs to another run, see the module docstring) or
        "auto" (continue when the file exists, else start from scratch, printing which)."""
        n_train = _n_samples(train, "train")
        if val is not None:
            _n_samples(val, "val")
        epochs = checks.integer("epochs", epochs, 0)
        if resume not in (True, False, "auto"):
            raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
        x_tr, y_tr = train
        if resume:
            if self.checkpoint is None:
                raise ValueError("resume needs checkpoint=<path> in the Trainer")
            if self.checkpoint.exists():
                self.load(self.checkpoint)
            elif resume is True:
                raise CheckpointError(f"resume=True but there is no checkpoint at {self.checkpoint}; check the path, "
                                      "or use resume='auto' to start from scratch when none exists.")
            else:
                print(f"[snnkit] resume='auto': no checkpoint at {self.checkpoint} yet; training from scratch")
        if self.check_finite:
            self._check_params("before")
        shape = (n_train, self.batch_size)
        if self.batch_in_epoch and self._data_shape is not None and tuple(self._data_shape) != shape:
            raise ValueError(
                f"the run stopped in the middle of epoch {self.epoch} with {self._data_shape[0]} training samples "
                f"in batches of {self._data_shape[1]}; it cannot continue with {len(y_tr)} samples in batches of "
                f"{self.batch_size} (the batches would differ).")
        src = self._device_source(x_tr, y_tr)
        y_np = np.asarray(y_tr) if src is not None else None
        from tqdm.auto import tqdm
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
            if src is not None and self.check_finite:
                self._check_params("after the optimizer update of")    # the epoch's last update
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
                "history": self.history, "seed": self.seed,
                "optimizer": self.opt.settings() if hasattr(self.opt, "settings") else None,
                "format": "snnkit.Trainer/1"}
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

    def load(self, path, weights_only=False) -> None:
        """Restore a checkpoint (see "Resume rules" in the module docstring): the whole file is read
        and checked against this model, optimizer and seed first, then assigned, so a mismatch
        leaves the Trainer and the model untouched. ``weights_only=True``: parameters and buffers
        only (a new run starting from those weights; optimizer, counters and history stay fresh)."""
        path = Path(path)
        d, meta = _read_checkpoint(path)
        where = f"checkpoint {path}"
        stores = self._check_model_entries(d, where)
        if not weights_only:
            saved = meta.get("optimizer")
            mine = self.opt.settings() if hasattr(self.opt, "settings") else None
            if saved is not None and mine is not None and saved != mine:
                raise CheckpointError(f"{where} was written with the optimizer {_fmt(saved)}; this Trainer has "
                                      f"{_fmt(mine)}. An exact resume needs the same optimizer and settings: build it "
                                      "as before, or start a new run from the weights with "
                                      "trainer.load(path, weights_only=True).")
            if hasattr(self.opt, "check_state_dict"):
                try:
                    self.opt.check_state_dict(d, where)
                except ValueError as e:
                    raise CheckpointError(str(e)) from None
            saved_seed = meta.get("seed", self.seed)
            if int(saved_seed) != self.seed:
                raise CheckpointError(f"{where} belongs to a run with seed={saved_seed}; this Trainer has "
                                      f"seed={self.seed}. Every random stream (shuffling, encoding) derives from the "
                                      f"seed: build the Trainer with seed={saved_seed} to continue that run, or start a "
                                      "new run from the weights with trainer.load(path, weights_only=True).")
        # everything checked: assign
        for store, k, arr in stores:
            store[k][...] = xp_of(store[k]).asarray(arr)
        if weights_only:
            return
        self.opt.load_state_dict(d)
        self.epoch, self.step_count = meta["epoch"], meta["step"]
        self.batch_in_epoch = meta.get("batch", 0)
        self._partial = tuple(meta.get("partial") or _ZERO)
        self._data_shape = tuple(meta["data_shape"]) if meta.get("data_shape") else None
        self.best, self.best_epoch = meta["best"], meta["best_epoch"]
        self.stopped_early = meta["stopped_early"]
        self.history = meta["history"]

    def _check_model_entries(self, d, where):
        """[(store, key, array)] of the checkpoint's parameters and buffers, after checking that they
        are exactly the model's (no missing, no extra, same shapes)."""
        want = {}
        for i, layer in enumerate(self.model.layers):
            for kind, store in (("param", getattr(layer, "params", {})), ("buffer", getattr(layer, "buffers", {}))):
                for k, arr in store.items():
                    want[f"{kind}/{i}/{k}"] = (i, layer, store, k, arr)
        have = {k for k in d if k.startswith(("param/", "buffer/"))}
        missing, extra = sorted(set(want) - have), sorted(have - set(want))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"the model has {_names(missing, want)} that the checkpoint lacks")
            if extra:
                parts.append(f"the checkpoint has {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''} that the "
                             "model lacks")
            raise CheckpointError(f"{where}: {'; '.join(parts)}; the architecture differs. Build the model the run "
                                  "used (same layers and sizes).")
        out = []
        for key, (i, layer, store, k, arr) in want.items():
            got = d[key]
            kind = key.split("/")[0]
            if tuple(arr.shape) != tuple(got.shape):
                raise CheckpointError(f"{where}: {kind} '{k}' of {_layer_name(i, layer)} has shape {got.shape}, the "
                                      f"model has {tuple(arr.shape)}; the architecture differs.")
            if got.dtype.kind not in "biuf":
                raise CheckpointError(f"{where}: {kind} '{k}' of {_layer_name(i, layer)} has dtype {got.dtype}; "
                                      "this is not a valid snnkit checkpoint.")
            out.append((store, k, got))
        return out


def _names(keys, want):
    return ", ".join(f"{k.split('/')[0]} '{k.split('/')[2]}' of {_layer_name(want[k][0], want[k][1])}"
                     for k in keys[:6]) + (" ..." if len(keys) > 6 else "")


def _fmt(settings) -> str:
    s = dict(settings)
    kind = s.pop("type", "?")
    return f"{kind}({', '.join(f'{k}={v}' for k, v in s.items())})"


def _read_checkpoint(path: Path):
    """(arrays, meta) of a checkpoint file; CheckpointError naming the file when it is missing,
    not an npz archive, truncated, holds pickled objects, or lacks the Trainer's metadata."""
    import zipfile
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    bad = f"{path} is not a valid snnkit checkpoint"
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise CheckpointError(f"{bad} (it holds a single array, not the npz archive Trainer.save writes)")
        with z:
            d = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"{bad}: it holds pickled Python objects, which snnkit never writes and never "
                                  "loads (they can run arbitrary code).") from None
        raise CheckpointError(f"{bad} ({type(e).__name__}: {e}); it is corrupt, truncated or another kind of "
                              "file.") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{bad} ({type(e).__name__}: {e}); it is corrupt, truncated or another kind of "
                              "file.") from None
    if "meta" not in d:
        raise CheckpointError(f"{bad}: it has no 'meta' entry (written by something other than Trainer.save)")
    try:
        meta = json.loads(bytes(d["meta"]).decode())
        for k in ("epoch", "step", "best", "best_epoch", "stopped_early", "history"):
            meta[k]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{bad}: its metadata is unreadable ({type(e).__name__}: {e})") from None
    return d, meta
