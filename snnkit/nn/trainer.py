"""The training loop every method uses: batches, optimizer steps, metrics, early stopping,
checkpoints and exact resume.

A *model* has ``forward(x)``, ``backward(grad)``, ``layers`` (each with ``params``/``grads`` and
optionally ``buffers``) and optionally ``train()``/``eval()``. A *loss* is a callable
``loss(output, labels) -> (value, dL/doutput)`` with ``predict(output) -> labels``. An optional
``encode(x_batch, rng) -> model input`` turns a data batch into spikes; it receives a Generator
seeded by (seed, epoch, batch), so stochastic encoders are reproducible and resumable too.

Shuffling uses one permutation per epoch drawn from ``default_rng([seed, epoch])``: no generator
state needs saving, and a run resumed from the checkpoint of epoch k continues bit-for-bit like an
uninterrupted one (on the CPU).

Checkpoints are ``np.savez`` files (no pickle) written to ``<path>.tmp`` and renamed, so an
interrupted write never leaves a file that looks complete.
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


class Trainer:
    def __init__(self, model, loss, optimizer, *, batch_size=32, encode=None, seed=0,
                 checkpoint=None, patience=None, monitor="val_acc", progress=True,
                 lr_schedule=None, check_finite=True, eval_batch_size=None, min_delta=0.0):
        self.model, self.loss, self.opt = model, loss, optimizer
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or max(batch_size, 256))
        self.encode = encode
        self.seed = int(seed)
        self.checkpoint = Path(checkpoint) if checkpoint else None
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
        self.best = None
        self.best_epoch = -1
        self.stopped_early = False

    # -- one batch ------------------------------------------------------------------------------
    def _input(self, x, epoch, batch_idx, train):
        if self.encode is None:
            return get_xp().asarray(x)
        r = np.random.default_rng([self.seed, epoch, batch_idx, int(train)])
        return self.encode(x, r)

    def _check(self, value, what):
        if self.check_finite and not np.isfinite(value):
            raise NonFiniteError(f"{what} became {value} at epoch {self.epoch}, step {self.step_count}. "
                                 "Lower the learning rate or check the inputs/initial weights.")

    def _check_grads(self):
        if not self.check_finite:
            return
        for i, layer in enumerate(self.model.layers):
            for k, g in getattr(layer, "grads", {}).items():
                xp = xp_of(g)
                if not bool(xp.isfinite(g).all()):
                    raise NonFiniteError(
                        f"gradient '{k}' of {_layer_name(i, layer)} is NaN/Inf at epoch {self.epoch}, "
                        f"step {self.step_count}. Lower the learning rate or check the layer's settings.")

    def train_step(self, x, y, batch_idx=0):
        if hasattr(self.model, "train"):
            self.model.train()
        out = self.model.forward(self._input(x, self.epoch, batch_idx, True))
        y_dev = xp_of(out if not hasattr(out, "times") else out.times).asarray(y)
        value, grad = self.loss(out, y_dev)
        self._check(value, "the loss")
        self.model.backward(grad)
        self._check_grads()
        self.opt.step()
        self.step_count += 1
        return value, accuracy(self.loss.predict(out), y)

    def evaluate(self, x, y):
        """(mean loss, accuracy) over a data set, batch by batch, in eval mode."""
        if hasattr(self.model, "eval"):
            self.model.eval()
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
        """Train for ``epochs`` (total, counting epochs already done when resuming)."""
        x_tr, y_tr = train
        if resume:
            if self.checkpoint is None:
                raise ValueError("resume=True needs checkpoint=<path> in the Trainer")
            if self.checkpoint.exists():
                self.load(self.checkpoint)
        from tqdm.auto import tqdm
        while self.epoch < epochs and not self.stopped_early:
            if self.lr_schedule is not None:
                self.opt.lr = float(self.lr_schedule(self.epoch))
            t0 = time.perf_counter()
            batches = list(iterate_batches(len(y_tr), self.batch_size, self.seed, self.epoch))
            bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{epochs}", leave=False,
                       disable=not self.progress)
            tot, acc, n = 0.0, 0.0, 0
            for j, idx in enumerate(bar):
                v, a = self.train_step(x_tr[idx], y_tr[idx], j)
                tot += v * len(idx)
                acc += a * len(idx)
                n += len(idx)
                bar.set_postfix(loss=f"{tot / n:.4f}", acc=f"{acc / n:.3f}")
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
            h["time"].append(time.perf_counter() - t0)
            self.epoch += 1
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
        meta = {"epoch": self.epoch, "step": self.step_count, "best": self.best,
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
        self.best, self.best_epoch = meta["best"], meta["best_epoch"]
        self.stopped_early = meta["stopped_early"]
        self.history = meta["history"]
