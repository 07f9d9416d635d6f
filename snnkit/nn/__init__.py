"""What every training method shares: optimizers, initializers, losses on logits, the trainer.

The layer protocol (see DESIGN.md): each trainable piece has ``forward(x) -> y``,
``backward(grad_y) -> grad_x``, and dicts ``params`` / ``grads`` of backend arrays with the same
keys. Layers with non-trainable state (running statistics) may also have ``buffers``.
"""
from .optim import SGD, Adam, Optimizer
from .init import uniform, normal, kaiming_normal, kaiming_uniform
from .losses import SoftmaxCrossEntropy, softmax, log_softmax
from .sequential import Sequential
from .trainer import Trainer, NonFiniteError, accuracy

__all__ = ["SGD", "Adam", "Optimizer", "uniform", "normal", "kaiming_normal", "kaiming_uniform",
           "SoftmaxCrossEntropy", "softmax", "log_softmax", "Sequential", "Trainer",
           "NonFiniteError", "accuracy"]
