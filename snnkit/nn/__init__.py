"""What every training method shares: the layer protocol, optimizers, initializers, losses on
logits, Sequential, the trainer.

The layer protocol (``snnkit.nn.protocol``, docs/design.md): each layer has ``forward(x) -> y``,
``backward(grad_y, need_input_grad=True) -> grad_x`` (None when ``need_input_grad`` is False), and
dicts ``params`` / ``grads`` of backend arrays with the same keys, the gradients written into
``grads`` in place. Layers with non-trainable state (running statistics) may also have ``buffers``.
"""
from .optim import SGD, Adam, Optimizer
from .init import uniform, normal, kaiming_normal
from .losses import SoftmaxCrossEntropy, softmax, log_softmax
from .sequential import Sequential
from .trainer import Trainer, NonFiniteError, accuracy

__all__ = ["SGD", "Adam", "Optimizer", "uniform", "normal", "kaiming_normal",
           "SoftmaxCrossEntropy", "softmax", "log_softmax", "Sequential", "Trainer",
           "NonFiniteError", "accuracy"]
