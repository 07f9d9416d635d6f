"""STBP's multi-step LIF: forward semantics, backward against an independent forward-mode
reference (rectangular surrogate, with and without detach_reset), finite differences in the
smooth-surrogate mode, the firing-rate monitor, and argument checks."""
import numpy as np
import pytest

from snnkit.stbp import LIF, STBP, LIFParameters, lif_backward, lif_forward, lif_forward_reference

from gradcheck import numerical_gradient

pytestmark = pytest.mark.usefixtures("numpy_backend")

TAU, VTH, AA = STBP.decay, STBP.v_th, STBP.half_width


def test_published_defaults():
    assert (TAU, VTH, AA) == (0.25, 0.4, 0.5)                  # Wu et al.: tau, Vth, a
    with pytest.raises(Exception):
        STBP.v_th = 1.0                                         # frozen: one shared default


def test_constant_drive_fires_every_other_step():
    # u0 = .35 (no spike), u1 = .25*.35 + .35 = .4375 (spike, reset), u2 = .35, ...
    o = lif_forward(np.full((6, 1), 0.35))
    assert o[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    # the fixed point x / (1 - tau) = 0.4 is approached from below and never reached: no spike
    assert lif_forward(np.full((30, 1), 0.3)).sum() == 0
    # at threshold exactly the neuron fires (H(0) = 1)
    assert lif_forward(np.full((1, 1), VTH))[0, 0] == 1


def _forward_mode_jacobian(x, tau, v_th, aa, detach_reset):
    """J[t, s] = do[t]/dx[s] of one neuron, by forward-mode tangents (independent of the reverse
    recurrence under test): du[t] = tau du[t-1] (1 - o[t-1]) - tau u[t-1] do[t-1] + dx[t]."""
    T = len(x)
    J = np.zeros((T, T))
    for s in range(T):
        u = o = du = do = 0.0
        for t in range(T):
            du_new = tau * du * (1 - o) + (0.0 if detach_reset else -tau * u * do) + (1.0 if t == s else 0.0)
            u = tau * u * (1 - o) + x[t]
            o = float(u >= v_th)
            h = float(abs(u - v_th) < aa) / (2 * aa)
            du, do = du_new, h * du_new
            J[t, s] = do
    return J


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("T", [1, 2, 5, 9])
def test_rect_backward_matches_forward_mode_reference(T, detach_reset):
    r = np.random.default_rng(T)
    M = 40
    x = r.normal(0.3, 0.4, (T, M))
    G = r.normal(size=(T, M))
    gx = lif_backward(G, x, LIFParameters(TAU, VTH, AA, detach_reset=detach_reset))
    for i in range(M):
        J = _forward_mode_jacobian(x[:, i], TAU, VTH, AA, detach_reset)
        np.testing.assert_allclose(gx[:, i], J.T @ G[:, i], rtol=1e-12, atol=1e-12)
    # the reset path matters: with spikes present, detaching changes the gradient
    if T > 2:
        other = lif_backward(G, x, LIFParameters(TAU, VTH, AA, detach_reset=not detach_reset))
        assert not np.allclose(gx, other)


@pytest.mark.parametrize("detach_reset", [False, True])
def test_sigmoid_surrogate_backward_matches_finite_differences(detach_reset):
    r = np.random.default_rng(1)
    T, shape = 6, (3, 4)
    x = r.normal(0.4, 0.5, (T,) + shape)
    R = r.normal(size=x.shape)

    smooth = LIFParameters(TAU, VTH, AA, surrogate="sigmoid")

    def loss():
        return float((lif_forward(x, smooth) * R).sum())

    gx = lif_backward(R, x, LIFParameters(TAU, VTH, AA, surrogate="sigmoid", detach_reset=detach_reset))
    num = numerical_gradient(loss, x, eps=1e-6)
    if detach_reset:      # a detached reset is not this forward's gradient: it must differ
        assert np.abs(gx - num).max() > 1e-4
    else:
        np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)


def test_layer_keeps_no_state_but_its_input_and_runs_backward():
    r = np.random.default_rng(0)
    x = r.normal(0.4, 0.5, (4, 2, 3, 3, 5)).astype(np.float32)
    lif = LIF()
    o = lif.forward(x)
    assert o.dtype == np.float32 and set(np.unique(o)) <= {0.0, 1.0}
    g = lif.backward(np.ones_like(o))
    assert g.shape == x.shape and g.dtype == np.float32
    np.testing.assert_array_equal(o, lif_forward_reference(x))


def test_firing_rate_monitor_counts_spikes_per_neuron_per_step():
    lif = LIF()
    x = np.zeros((4, 2, 5))
    x[1, 0, :] = 1.0            # sample 0: every neuron fires at step 1 only
    x[:, 1, 0] = 1.0            # sample 1: neuron 0 fires at all 4 steps
    lif.forward(x)              # not monitored: nothing recorded
    with pytest.raises(RuntimeError, match="monitor"):
        lif.firing_rate()
    lif.monitor(True)
    lif.forward(x)
    per_step = lif.firing_rate(per_step=True)
    np.testing.assert_allclose(per_step, [1 / 10, 6 / 10, 1 / 10, 1 / 10])
    assert lif.firing_rate() == pytest.approx(9 / 40)


@pytest.mark.parametrize("kw, match", [
    (dict(decay=1.5), "decay"), (dict(half_width=0.0), "half_width"), (dict(surrogate="triangle"), "surrogate")])
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        LIFParameters(**kw)
    with pytest.raises(TypeError, match="LIFParameters"):
        LIF(dict(kw))
    with pytest.raises(TypeError, match="LIFParameters"):
        lif_forward(np.zeros((2, 3)), 0.25)


def test_backward_shape_mismatch_raises():
    with pytest.raises(ValueError, match="grad_o"):
        lif_backward(np.zeros((2, 3)), np.zeros((3, 3)))
