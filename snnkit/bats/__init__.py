"""BATS: exact event-based training of spiking networks (Bacho & Chu 2023).

Read in this order: ``neuron.py`` (the model, its closed-form spike times and its parameters,
``LIFParameters``), ``simulate.py``
(forward), ``backward.py`` (exact gradients), ``losses.py``, ``layers.py``. ``conv.py`` (valid convolution as
a dense layer over gathered patches) and ``pool.py`` (2x2 merge of spike trains) extend it to
convolutional networks; ``study.py`` holds the time-discretization study (build_network from the
paper's notation, set_dt, metrics, sweep).
"""
from .neuron import LIFParameters, X_GUARD, grid_up
from .simulate import Simulation, simulate, sort_events
from .backward import backward, input_grad, spike_factors, weight_grad
from .losses import SpikeCountLoss, TTFSCrossEntropy, predict_count, predict_first
from .layers import LIFDense, Network, SpikeInput, latency_encoder, mark_checked
from .pool import SpikePool2d, merge_pool, merge_pool_backward
from .conv import ConvLIF
from .study import build_network, evaluate, falloff_dt, set_dt, sweep

__all__ = ["LIFParameters", "simulate", "Simulation", "sort_events", "backward", "spike_factors", "weight_grad",
           "input_grad", "TTFSCrossEntropy", "SpikeCountLoss", "predict_first", "predict_count",
           "LIFDense", "SpikeInput", "Network", "latency_encoder", "mark_checked", "SpikePool2d", "merge_pool",
           "merge_pool_backward", "grid_up", "X_GUARD", "ConvLIF", "build_network", "evaluate", "falloff_dt",
           "set_dt", "sweep"]
