"""Issue 15, STBP: settings, layouts checked by shape, empty inputs, backward before forward, and
the NaN diagnosis naming the right culprit."""
import numpy as np
import pytest

from snnkit import nn, stbp

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.mark.parametrize("value", [0.0, -0.4, np.nan, np.inf])
def test_v_th_must_be_positive_and_finite(value):
    with pytest.raises(ValueError, match="v_th must be"):
        stbp.LIFParameters(v_th=value)               # what LIF, lif_forward and the models take


@pytest.mark.parametrize("eps", [0.0, -1e-5, np.nan])
def test_tdbn_eps_must_be_positive(eps):
    with pytest.raises(ValueError, match="eps must be"):
        stbp.TDBatchNorm(4, eps=eps)


def test_tdbn_with_a_tiny_eps_on_a_constant_channel_stays_finite():
    bn = stbp.TDBatchNorm(3, eps=1e-12, dtype=np.float64)
    y = bn.forward(np.ones((2, 4, 3)))                     # variance 0: x^ = 0, not 0/0
    assert np.isfinite(y).all()


def test_channels_first_is_refused_by_shape_when_c_equals_w():
    x = np.zeros((2, 3, 4, 5, 4), np.float32)             # [T, B, C=4, H=5, W=4]: channels-first with W == C
    conv = stbp.Conv2d(4, 8, in_shape=(5, 4))
    with pytest.raises(ValueError, match=r"built for frames of in_shape \(5, 4\).*channels-first"):
        conv.forward(x)
    assert conv.forward(x.transpose(0, 1, 3, 4, 2)).shape == (2, 3, 5, 4, 8)       # channels-last: fine
    bn = stbp.TDBatchNorm(4, in_shape=(5, 4))
    with pytest.raises(ValueError, match="channels last"):
        bn.forward(x)
    assert bn.forward(x.transpose(0, 1, 3, 4, 2)).shape == (2, 3, 5, 4, 4)


def test_resnet_refuses_channels_first_images():
    # the probe: resnet19(in_shape=(8, 8, 3)) silently reshaped a [B, 3, 8, 8] batch
    net = stbp.resnet19(in_shape=(8, 8, 3), width=4, blocks=(1,), fc=8)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"channels-first.*transpose\(0, 2, 3, 1\)"):
        net.forward(x)
    assert net.forward(x.transpose(0, 2, 3, 1)).shape == (2, 10)
    assert net.forward(x.transpose(0, 2, 3, 1).reshape(2, -1)).shape == (2, 10)   # flat channels-last
    # every conv and norm of the network knows its frame size
    assert all(l.in_shape is not None for l in net.layers if isinstance(l, (stbp.Conv2d, stbp.TDBatchNorm)))


def test_negative_padding_is_a_clear_error():
    with pytest.raises(ValueError, match="padding must be >= 0"):
        stbp.Conv2d(2, 4, padding=-1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        stbp.im2col(np.zeros((1, 4, 4, 2)), 3, 1, -1)


@pytest.mark.parametrize("make,shape", [
    (lambda: stbp.DirectInput(2, (4, 4)), (0, 16)),
    (lambda: stbp.LIF(), (0, 3)),
    (lambda: stbp.LIF(), (0,)),
])
def test_empty_batch_or_time_is_a_clear_error(make, shape):
    with pytest.raises(ValueError, match="empty|T >= 1"):
        make().forward(np.zeros(shape, np.float32))


def test_zero_time_steps_are_refused():
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        stbp.DirectInput(0, (4, 4))


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_layer_dtypes(dtype):
    for make in (lambda: stbp.Conv2d(2, 4, dtype=dtype), lambda: stbp.Linear(3, 2, dtype=dtype),
                 lambda: stbp.TDBatchNorm(3, dtype=dtype)):
        with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
            make()


@pytest.mark.parametrize("make", [lambda: stbp.Conv2d(2, 4), lambda: stbp.Linear(3, 2), lambda: stbp.TDBatchNorm(3),
                                  lambda: stbp.LIF(), lambda: stbp.AvgPool2d(2), lambda: stbp.GlobalAvgPool(),
                                  lambda: stbp.Readout()])
def test_backward_before_forward_is_one_runtime_error(make):
    with pytest.raises(RuntimeError, match="backward called before forward: run forward on the batch first"):
        make().backward(np.zeros((1, 1, 2, 2, 2), np.float32))


def _resnet_trainer():
    net = stbp.resnet19(n_steps=1, in_shape=(6, 6), width=4, blocks=(1,), fc=8, num_classes=3, seed=0)
    r = np.random.default_rng(0)
    x, y = r.uniform(0, 1, (12, 36)).astype(np.float32), r.integers(0, 3, 12)
    t = nn.Trainer(net, stbp.CrossEntropy(), nn.Adam(net, lr=1e-3), batch_size=6, progress=False)
    return net, t, x, y


def test_nan_conv_weight_is_blamed_on_that_conv():
    # the probe: a NaN in s1.b1.conv1's weight was reported as s1.b1.lif1's backward
    net, t, x, y = _resnet_trainer()
    net.blocks[0].conv1.params["weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(nn.NonFiniteError, match=r"parameter 'weight' of layer \d+ \(s1.b1.conv1\)"):
        t.fit((x, y), epochs=1)


def test_nan_pixel_is_blamed_on_the_input():
    net, t, x, y = _resnet_trainer()
    x[3, 5] = np.nan
    with pytest.raises(nn.NonFiniteError, match="the model input .*contains NaN/Inf"):
        t.fit((x, y), epochs=1)
