"""A network is a list of layers: forward left to right, backward right to left.

``Sequential`` follows the layer protocol itself (:mod:`snnkit.nn.protocol`): ``params`` and
``grads`` are flat views ``{"<index>.<key>": array}`` of its layers' own dicts (the same array
objects, so an optimizer may hold either), and ``backward(grad, need_input_grad=False)`` hands the
flag to the layers up to the first one with parameters; the later layers' input errors are needed
by the layers before them.
``None`` entries are skipped, so an optional layer (no normalization) can be written inline.
"""
from __future__ import annotations


class Sequential:
    def __init__(self, *layers):
        layers = list(layers[0]) if len(layers) == 1 and isinstance(layers[0], (list, tuple)) else list(layers)
        self.layers = [layer for layer in layers if layer is not None]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, grad, need_input_grad=True):
        # Layers before the first one with parameters only pass data along: when the container's
        # input needs no gradient, neither do theirs, so all of them, the first trainable layer
        # included, get need_input_grad=False (that layer then skips its input gradient).
        first = next((i for i, layer in enumerate(self.layers) if getattr(layer, "params", None)), 0)
        for i in range(len(self.layers) - 1, -1, -1):
            grad = self.layers[i].backward(grad, need_input_grad=need_input_grad or i > first)
        return grad

    @property
    def params(self) -> dict:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, "params", {}).items()}

    @property
    def grads(self) -> dict:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, "grads", {}).items()}

    def train(self):
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train()
        return self

    def eval(self):
        for layer in self.layers:
            if hasattr(layer, "eval"):
                layer.eval()
        return self

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"{type(self).__name__}(\n  {inner}\n)"
