"""Issue 15, S3GD: bad input gets a clear error; graded input is documented and tested."""
import numpy as np
import pytest

from snnkit import nn, s3gd
from snnkit.datasets import log_latency

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _data(n=48, seed=0):
    r = np.random.default_rng(seed)
    x = r.uniform(0, 1, (n, 8))
    return x, (x[:, 0] > x[:, 1]).astype(np.int64)


def _trainer(net, **kw):
    return nn.Trainer(net, net.loss(), nn.Adam(net, lr=1e-3), batch_size=16, progress=False,
                      encode=lambda x, r: log_latency(x, n_steps=12), **kw)


@pytest.mark.parametrize("sparse", [True, False])
def test_nan_weight_stops_training_in_both_modes(sparse):
    # the probe: sparse mode (the default) finished at chance loss without an error
    net = s3gd.Network(8, 10, 2, sparse=sparse, seed=0)
    net.hidden[0].params["weight"][3, 4] = np.nan
    with pytest.raises(nn.NonFiniteError, match=r"parameter 'weight' of layer 0 \(hidden1\) contains NaN/Inf"):
        _trainer(net).fit(_data(), epochs=1)


def test_nan_input_raster_stops_training_in_sparse_mode():
    net = s3gd.Network(8, 10, 2, seed=0)

    def encode(x, r):
        s = log_latency(x, n_steps=12)
        s[0, 0, 0] = np.nan
        return s
    t = nn.Trainer(net, net.loss(), nn.Adam(net, lr=1e-3), batch_size=16, progress=False, encode=encode)
    with pytest.raises(nn.NonFiniteError, match="model input .*contains NaN/Inf"):
        t.fit(_data(), epochs=1)
    with pytest.raises(ValueError, match="input contains NaN or Inf"):      # the layer itself, used directly
        net.forward(encode(_data()[0][:4], None))


def test_labels_out_of_range_are_a_clear_error_not_an_index_error():
    net = s3gd.Network(8, 10, 2, seed=0)
    logits = net.forward(log_latency(_data()[0][:4], n_steps=12))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\) for 2 output classes; found 2"):
        net.loss()(logits, np.array([0, 1, 2, 0]))


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_threshold_must_be_positive_and_finite(value):
    with pytest.raises(ValueError, match="threshold must be"):
        s3gd.Network(8, 10, 2, threshold=value)
    with pytest.raises(ValueError, match="threshold must be"):
        s3gd.LIFDense(8, 10, 0.9, threshold=value)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.int64])
def test_integer_dtype_is_refused_instead_of_truncating_the_weights(dtype):
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
        s3gd.Network(8, 10, 2, dtype=dtype)


@pytest.mark.parametrize("shape,msg", [((0, 5, 8), "at least one sample"), ((2, 0, 8), "one time step"),
                                       ((2, 5), r"\[batch, time, 8\]")])
def test_empty_batch_or_time_is_a_clear_error(shape, msg):
    with pytest.raises(ValueError, match=msg):
        s3gd.LIFDense(8, 10, 0.9).forward(np.zeros(shape))


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="input must be real numbers"):
        s3gd.LIFDense(8, 10, 0.9).forward(np.zeros((2, 5, 8), complex))


def test_graded_input_gets_the_same_exact_gradient_in_both_modes():
    # documented behaviour: the first layer takes graded (real) input; h = S_in W and the trace are
    # linear in S_in, so the sparse backward is the dense one with the surrogate truncated to the band
    r = np.random.default_rng(1)
    x = r.uniform(0, 1.5, (3, 10, 8))                     # not 0/1
    g = r.normal(size=(3, 10, 6))
    grads = []
    for sparse in (True, False):
        layer = s3gd.LIFDense(8, 6, 0.9, delta=0.3, sparse=sparse, truncate=not sparse, seed=2,
                              dtype=np.float64, weight_scale=3.0)
        layer.forward(x)
        assert layer.active_set().n > 0
        gin = layer.backward(g)
        grads.append((layer.grads["weight"], gin))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)


def test_backward_before_forward():
    for make in (lambda: s3gd.LIFDense(8, 6, 0.9), lambda: s3gd.LeakyReadout(6, 2),
                 lambda: s3gd.Network(8, 6, 2)):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            make().backward(np.zeros((1, 2)))
