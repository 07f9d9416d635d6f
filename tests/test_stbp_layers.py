"""Conv2d (im2col + GEMM), Linear, pooling, the readout and the residual block: forward against
direct definitions and gradients against finite differences (float64)."""
import numpy as np
import pytest

from snnkit.stbp import (AvgPool2d, BasicBlock, Conv2d, DirectInput, GlobalAvgPool, LIFParameters, Linear, Readout,
                         col2im, conv2d_backward, conv2d_forward, im2col, resnet19)

from gradcheck import fd_check

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _direct_conv(x, w, s, p):
    """y[n, i, j, o] = sum_(a, b, c) xpad[n, i s + a, j s + b, c] w[o, a, b, c], by loops."""
    N, H, W, C = x.shape
    O, k = w.shape[0], w.shape[1]
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    y = np.zeros((N, Ho, Wo, O))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, i * s:i * s + k, j * s:j * s + k, :]
            y[:, i, j, :] = np.einsum("nabc,oabc->no", patch, w)
    return y


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 1), (1, 2, 0), (1, 1, 0), (2, 2, 0), (3, 1, 0)])
def test_conv_forward_matches_direct_definition(k, s, p):
    r = np.random.default_rng(0)
    x = r.normal(size=(3, 7, 6, 4))
    w = r.normal(size=(5, k, k, 4))
    np.testing.assert_allclose(conv2d_forward(x, w, s, p), _direct_conv(x, w, s, p), rtol=1e-12, atol=1e-12)
    # chunking the frames (a tiny col budget) changes nothing
    np.testing.assert_allclose(conv2d_forward(x, w, s, p, max_col_bytes=1), _direct_conv(x, w, s, p),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 1), (1, 2, 0)])
def test_col2im_is_the_adjoint_of_im2col(k, s, p):
    r = np.random.default_rng(1)
    x = r.normal(size=(2, 5, 7, 3))
    col = im2col(x, k, s, p)
    c = r.normal(size=col.shape)
    assert np.isclose((col * c).sum(), (x * col2im(c, x.shape, k, s, p)).sum(), rtol=1e-12)


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 1), (1, 2, 0)])
def test_conv_gradients_match_finite_differences(k, s, p):
    r = np.random.default_rng(2)
    conv = Conv2d(3, 4, k, s, padding=p, seed=0, dtype=np.float64, max_col_bytes=2000)
    x = r.normal(size=(2, 2, 5, 6, 3))
    R = r.normal(size=conv.forward(x).shape)

    def f():
        return float((conv.forward(x) * R).sum())

    f()
    gx = conv.backward(R)
    fd_check(f, [x, conv.params["weight"]], [gx, conv.grads["weight"]])


def test_first_conv_skips_the_input_gradient():
    conv = Conv2d(1, 2, 3, dtype=np.float64)
    x = np.ones((2, 1, 4, 4, 1))
    grad = conv.grads["weight"]
    assert conv.backward(conv.forward(x), need_input_grad=False) is None
    assert conv.grads["weight"] is grad and np.abs(grad).max() > 0          # the weights still learn


def test_linear_pooling_readout_gradients():
    r = np.random.default_rng(3)
    lin = Linear(6, 4, seed=0, dtype=np.float64)
    x = r.normal(size=(3, 2, 6))
    R = r.normal(size=(3, 2, 4))
    f = lambda: float((lin.forward(x) * R).sum())      # noqa: E731
    f()
    gx = lin.backward(R)
    fd_check(f, [x, lin.params["weight"], lin.params["bias"]], [gx, lin.grads["weight"], lin.grads["bias"]])

    for layer, shape in ((AvgPool2d(2), (2, 3, 4, 6, 2)), (GlobalAvgPool(), (2, 3, 4, 5, 2)),
                         (Readout(), (4, 3, 5))):
        x = r.normal(size=shape)
        R = r.normal(size=layer.forward(x).shape)
        f = lambda: float((layer.forward(x) * R).sum())  # noqa: E731
        f()
        fd_check(f, [x], [layer.backward(R)])


def test_pooling_and_readout_values():
    x = np.arange(2 * 1 * 4 * 4 * 1, dtype=np.float64).reshape(2, 1, 4, 4, 1)
    np.testing.assert_allclose(AvgPool2d(2).forward(x)[0, 0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(GlobalAvgPool().forward(x)[:, 0, 0], [7.5, 23.5])
    np.testing.assert_allclose(Readout().forward(np.array([[[1.0, 2.0]], [[3.0, 6.0]]])), [[2.0, 4.0]])
    d = DirectInput(3, (2, 2)).forward(np.arange(8, dtype=np.float32).reshape(2, 4))
    assert d.shape == (3, 2, 2, 2, 1) and (d[2] == d[0]).all() and d[0, 1, 1, 1, 0] == 7


@pytest.mark.parametrize("c_in, c_out, stride", [(3, 3, 1), (3, 4, 2)])
@pytest.mark.parametrize("norm", ["tdbn", "bn", None])
@pytest.mark.parametrize("fused", [False, True])
def test_residual_block_gradients_in_smooth_mode(c_in, c_out, stride, norm, fused):
    """Identity and 1x1-downsample shortcuts, the LIF's reset path included (sigmoid surrogate);
    ``fused``: tdBN + LIF through snnkit.stbp.fused (the residual add inside)."""
    r = np.random.default_rng(4)
    blk = BasicBlock(c_in, c_out, stride, norm=norm, seed=1, dtype=np.float64,
                     neuron=LIFParameters(v_th=0.4, half_width=0.5, surrogate="sigmoid")).set_fused(fused)
    x = r.random((3, 2, 4, 4, c_in))
    R = r.normal(size=blk.forward(x).shape)
    saved = [(l, {k: v.copy() for k, v in l.buffers.items()}) for l in blk.layers if hasattr(l, "buffers")]

    def f():
        for l, b in saved:
            for k, v in b.items():
                l.buffers[k][:] = v
        return float((blk.forward(x) * R).sum())

    f()
    gx = blk.backward(R)
    arrays, grads = [x], [gx]
    for l in blk.layers:
        for k in l.params:
            arrays.append(l.params[k])
            grads.append(l.grads[k])
    fd_check(f, arrays, grads, max_entries=12)


def test_whole_network_gradient_in_smooth_mode():
    r = np.random.default_rng(5)
    m = resnet19(in_shape=(4, 4), width=2, blocks=(1, 1), fc=4, num_classes=3, n_steps=2,
                 neuron=LIFParameters(surrogate="sigmoid"), dtype=np.float64, seed=0)
    x = r.random((3, 16))
    R = r.normal(size=(3, 3))
    f = lambda: float((m.forward(x) * R).sum())  # noqa: E731  (tdBN running stats do not feed back in train mode)
    f()
    m.backward(R)
    arrays, grads = list(m.params.values()), list(m.grads.values())
    fd_check(f, arrays, grads, max_entries=5)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="channels-last"):
        Conv2d(3, 4).forward(np.zeros((2, 2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        im2col(np.zeros((1, 2, 2, 1)), 5, 1, 0)
    with pytest.raises(ValueError, match="divisible"):
        AvgPool2d(2).forward(np.zeros((1, 1, 3, 4, 1)))
    with pytest.raises(ValueError, match="DirectInput"):
        DirectInput(2, (8, 8)).forward(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="norm"):
        resnet19(norm="layer")
