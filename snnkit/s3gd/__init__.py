"""S3GD: discrete-time surrogate-gradient LIF networks with a dense and a sparse backward.

Read in this order: neuron.py (parameters, and the formulas every path shares: the surrogate, the
band), lif.py (model, forward, dense BPTT), sparse.py (active set, its compaction schedule, sparse
backward), scan.py (leaky filter), readout.py, loss.py, network.py, instruments.py. The CUDA twins
are in kernels/s3gd_*.cu (shared formulas in kernels/s3gd_common.cuh) and launched from cuda.py
(its docstring says why there and not beside the twins); graph.py records the sparse GPU backward
as a CUDA graph and replays it (Network(cuda_graph=True)).
"""
from .neuron import LIFParameters, BETA, fast_sigmoid_grad, in_band
from .lif import LIFDense, lif_simulate, lif_delta_dense
from .sparse import ActiveSet, ActiveGrad, active_set, sparse_weight_grad, sparse_input_grad
from .scan import scan_forward, scan_backward
from .readout import LeakyReadout
from .loss import ActivityRegularizer, S3GDLoss
from .network import Network, DeadLayerGuard, DeadNetworkWarning
from .instruments import (active_fractions, gradient_cosine, backward_profile, weight_gradients,
                          PeakMemory)
from .recipes import DIGITS, train_digits, digits_encoder

__all__ = ["LIFParameters", "BETA", "in_band", "LIFDense", "lif_simulate", "lif_delta_dense", "fast_sigmoid_grad", "ActiveSet",
           "ActiveGrad", "active_set", "sparse_weight_grad", "sparse_input_grad", "scan_forward",
           "scan_backward", "LeakyReadout", "ActivityRegularizer", "S3GDLoss", "Network",
           "DeadLayerGuard", "DeadNetworkWarning", "active_fractions", "gradient_cosine",
           "backward_profile", "weight_gradients", "PeakMemory", "DIGITS", "train_digits", "digits_encoder"]
