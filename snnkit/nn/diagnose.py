"""NaN/Inf in training: the checks, and — only when one fails — the search for the layer that made it.

The contract with :class:`snnkit.nn.trainer.Trainer` (which calls every function here):

    finite(obj)                      no NaN/Inf in an array, a scalar, a container of them or a spike
                                     container (times are +inf padded: there only NaN and -inf count)
    all_finite(arrays)               the same for many float arrays in one fused reduction (one sync)
    check_params(layers, when, ...)  NonFiniteError naming every parameter that holds NaN/Inf
    explain_loss(model, value, inp, where)
                                     why the loss is NaN/Inf: the input, the first layer whose forward
                                     turned a finite input into NaN/Inf, something computed between
                                     layers, or the loss itself
    explain_grads(model, grad, where)
                                     why a gradient is NaN/Inf: the loss gradient, or the first layer
                                     the backward reached with a finite gradient that produced NaN/Inf

The search (:func:`first_nonfinite`) re-runs the failed batch's forward or backward once with each
layer's method wrapped by a check and stops at the first result that is not finite:

    first layer i (in call order) with  finite(input_i)  and  not finite(result_i)

where the result is the forward output, or for the backward the layer's ``grads`` and then its
returned input gradient. Normal training pays nothing for it: it runs only after a check failed.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy, xp_of

__all__ = ["NonFiniteError", "finite", "all_finite", "grads_finite", "layer_name", "check_params", "first_nonfinite",
           "explain_loss", "explain_grads"]


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/Inf; the message names the layer and the step."""


def layer_name(i, layer):
    return f"layer {i} ({getattr(layer, 'name', None) or type(layer).__name__})"


def finite(obj) -> bool:
    """No NaN/Inf in ``obj`` (an array, a scalar, a tuple/list/dict of them, or a spike container).
    Spike times (anything with ``.times``) are +inf padded, so there only NaN and -inf count."""
    if obj is None:
        return True
    if isinstance(obj, (tuple, list)):
        return all(finite(o) for o in obj)
    if isinstance(obj, dict):
        return all(finite(o) for o in obj.values())
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


def all_finite(arrays) -> bool:
    """True when every float array of ``arrays`` is free of NaN/Inf: one fused reduction per device
    (one sync on a GPU, however many arrays)."""
    flags = [xp_of(a).isfinite(a).all() for a in arrays
             if getattr(a, "dtype", None) is not None and np.dtype(a.dtype).kind in "fc"]
    if not flags:
        return True
    xp = xp_of(flags[0])
    return bool(xp.stack(flags).all()) if xp is not np else all(bool(f) for f in flags)


def grads_finite(layers) -> bool:
    return all_finite([g for layer in layers for g in getattr(layer, "grads", {}).values()])


def check_params(layers, when, where, step, epoch) -> None:
    """NonFiniteError naming every parameter with NaN/Inf (one fused check when all are finite).
    ``when``: "before" (the start of ``fit``) or "after the optimizer update of" step ``step - 1``."""
    params = [(i, layer, k, p) for i, layer in enumerate(layers) for k, p in getattr(layer, "params", {}).items()]
    if all_finite([p for *_, p in params]):
        return
    bad = [f"'{k}' of {layer_name(i, layer)}" for i, layer, k, p in params if not all_finite([p])]
    if when == "before":
        raise NonFiniteError(f"parameter {', '.join(bad)} contains NaN/Inf before training starts {where} "
                             "(set by hand, a bad initialization or a loaded checkpoint). A NaN weight silences a "
                             "spiking neuron instead of reaching the loss; re-initialize the layer.")
    raise NonFiniteError(f"parameter {', '.join(bad)} became NaN/Inf {when} step {step - 1} (epoch "
                         f"{epoch}) although its gradients were finite: the update overflowed. Lower the "
                         "learning rate.")


class _Found(Exception):
    """Stops a diagnostic re-run at the first non-finite result."""


_MISSING = object()


def first_nonfinite(layers, method, run):
    """Call ``run()`` with ``layer.<method>`` of every layer wrapped by a check; return
    ``(i, layer, what)`` for the first call whose input was finite and whose result (the
    output, the returned gradient or the layer's grads) was not, ``(i, layer, "input")`` when a
    layer was handed a non-finite input that no layer produced, or None. Best effort: an
    exception of the re-run is swallowed and the wrappers are always removed again."""
    found, patched = [], []

    def wrap(i, layer, fn):
        def checked(*args, **kwargs):
            if args and not finite(args[0]):
                found.append((i, layer, "input"))
                raise _Found
            res = fn(*args, **kwargs)
            if method == "backward":
                for k, g in getattr(layer, "grads", {}).items():
                    if not finite(g):
                        found.append((i, layer, f"gradient '{k}'"))
                        raise _Found
            if not finite(res):
                found.append((i, layer, "output" if method == "forward" else "returned gradient"))
                raise _Found
            return res
        return checked

    for i, layer in enumerate(layers):
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


def explain_loss(model, value, inp, where) -> str:
    """The message of a NaN/Inf loss ``value`` on model input ``inp``; ``where``: "at epoch e, step s"."""
    if not finite(inp):
        return (f"the model input (the batch after encoding) contains NaN/Inf {where}, so the loss "
                f"became {value}. Check the data and the encoder.")
    # re-run the forward layer by layer on this batch; buffers (running statistics) are restored
    saved = [(b, to_numpy(b).copy()) for layer in model.layers for b in getattr(layer, "buffers", {}).values()]
    try:
        hit = first_nonfinite(model.layers, "forward", lambda: model.forward(inp))
    finally:
        for b, v in saved:
            b[...] = xp_of(b).asarray(v)
    if hit is None:
        return (f"the loss became {value} {where} although every layer's forward output is finite: the "
                "loss itself overflowed. Check the scale of the outputs and the loss settings.")
    i, layer, what = hit
    if what == "input":
        return (f"the input of {layer_name(i, layer)} is NaN/Inf {where} although every earlier layer's "
                f"output was finite (computed between layers, e.g. a residual sum); the loss became {value}.")
    return (f"{layer_name(i, layer)} returned a NaN/Inf forward output from a finite input {where} "
            f"(the loss became {value}). Lower the learning rate or check that layer's weights and settings.")


def explain_grads(model, grad, where) -> str:
    """The message of a NaN/Inf gradient after ``model.backward(grad)``; ``where`` as above."""
    bad = [(i, layer, k) for i, layer in enumerate(model.layers)
           for k, g in getattr(layer, "grads", {}).items() if not bool(xp_of(g).isfinite(g).all())]
    others = ", ".join(dict.fromkeys(layer_name(i, layer) for i, layer, _ in bad))
    if not finite(grad):
        return (f"the gradient of the loss is NaN/Inf {where} although the loss is finite; layers with "
                f"NaN/Inf gradients: {others}. Check the loss.")
    hit = first_nonfinite(model.layers, "backward", lambda: model.backward(grad))
    if hit is not None and hit[2] != "input":
        i, layer, what = hit
        if what == "returned gradient":
            head = f"the backward of {layer_name(i, layer)} returned a NaN/Inf input gradient {where}"
        else:
            head = f"{what} of {layer_name(i, layer)} is NaN/Inf {where}"
        return (f"{head}, from a finite incoming gradient (the first layer the backward reached with a "
                f"finite gradient that produced NaN/Inf; layers with NaN/Inf gradients: {others}). "
                "Lower the learning rate or check the layer's settings.")
    i, layer, k = bad[-1]   # no re-run possible: the last layer in order is the one backward reaches first
    return (f"gradient '{k}' of {layer_name(i, layer)} is NaN/Inf {where} (layers with NaN/Inf "
            f"gradients: {others}). Lower the learning rate or check the layer's settings.")
