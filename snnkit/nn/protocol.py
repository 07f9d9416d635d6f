"""The layer protocol every method follows (BATS, S3GD, STBP and the containers of ``snnkit.nn``).

A *layer* is anything with

* ``params: dict[str, Array]`` -- its trainable arrays (``{}`` when it has none);
* ``grads: dict[str, Array]`` -- the same keys and shapes. ``backward`` writes the gradients INTO
  these arrays (``grads[k][...] = g``, or ``+=`` where it accumulates) and never rebinds
  ``grads[k]``: optimizers and captured CUDA graphs hold references to them;
* ``forward(x) -> y``;
* ``backward(grad_y, need_input_grad=True) -> grad_x`` -- ``None`` when ``need_input_grad`` is
  False (the first layer of a network: its input is data, nothing upstream needs the error).
  Method-specific keyword arguments may follow (S3GD's ``at=`` / ``side=`` for active sets).

Layers with non-trainable state (running statistics) may also have ``buffers``. ``backward``
before ``forward`` raises ``RuntimeError`` through :func:`require_forward`, with one message in
every method. Containers (:class:`snnkit.nn.Sequential` and the models built on it) follow the same
protocol, so a network can be used wherever a layer can. ``tests/test_protocol.py`` holds every
layer class of every method to it; ``docs/design.md`` explains the choices.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Layer", "TrainingMode", "require_forward", "layer_name"]


@runtime_checkable
class Layer(Protocol):
    """What a layer (or a container of layers) provides; see the module docstring."""

    params: dict[str, Any]
    grads: dict[str, Any]

    def forward(self, x): ...

    def backward(self, grad_y, need_input_grad: bool = True): ...


def layer_name(layer) -> str:
    """The name a message uses for ``layer``: its ``name`` when it has one, else its class name."""
    return getattr(layer, "name", None) or type(layer).__name__


def require_forward(layer, cache) -> None:
    """RuntimeError when ``cache`` (what forward keeps for backward) is None: backward came first.

    One message for every method, so that a student who calls ``backward`` on a fresh layer reads
    the same fix wherever it happens."""
    if cache is None:
        raise RuntimeError(f"{layer_name(layer)}.backward called before forward: run forward on the batch first")


class TrainingMode:
    """``train()`` / ``eval()`` for a layer whose forward depends on the mode (batch statistics,
    what it keeps for backward). ``training`` starts True; both return the layer, for chaining."""

    training = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self
