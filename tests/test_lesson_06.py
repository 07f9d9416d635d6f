"""Notebook 06 (deep SNNs, STBP + tdBN): the exercise checks, the deep plain stack and its gradient
probe, and the derived facts the lesson's claims rest on (tdBN makes a network independent of Vth when
aa is proportional to it; plain BN is tdBN at alpha Vth = 1; a silent layer passes no weight gradient).
The notebook itself runs with strict claims in test_notebooks.py."""
import numpy as np
import pytest

from snnkit import exercises, lessons
from snnkit.stbp import BatchNorm, LIF, LIFParameters, Linear, TDBatchNorm, depth_profile
from snnkit.stbp.plain import PlainStack, RepeatInput, gradient_profile, train_plain_stack
from snnkit.stbp.probe import silent_depth

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")


def _batch(n=32, seed=0):
    from snnkit.datasets import load
    d = load("digits", "train")
    return d.x[:n], d.y[:n]


# ---- the exercise checks: right -> True, wrong -> False, `...` -> None --------------------------------
def test_check_silent_depth(lenient, capsys):
    rate = depth_profile(depth=40, norm=None, weight_mean=0.5)["rate"]
    truth = int(np.flatnonzero(rate == 0)[0]) + 1
    assert exercises.check_silent_depth(truth) is True
    assert exercises.check_silent_depth(truth - 1) is False          # the 0-based index: the classic slip
    assert exercises.check_silent_depth("eleven") is False
    assert exercises.check_silent_depth(...) is None
    out = capsys.readouterr().out
    assert f"layer {truth}" in out and "not yet" in out and "replace the `...`" in out


def test_check_tdbn_scale(lenient):
    assert exercises.check_tdbn_scale(0.4 / np.sqrt(2)) is True
    assert exercises.check_tdbn_scale(0.4) is False                   # alpha forgotten
    assert exercises.check_tdbn_scale(1.0) is False                   # plain BN's scale
    assert exercises.check_tdbn_scale(None) is None
    assert exercises.check_tdbn_scale(0.3, alpha=0.75, v_th=0.4) is True     # the truth is measured, not fixed


def test_check_bn_threshold(lenient):
    assert exercises.check_bn_threshold(1.0) is True
    assert exercises.check_bn_threshold(0.4) is False
    assert exercises.check_bn_threshold(-1) is False
    assert exercises.check_bn_threshold(...) is None


def test_checks_raise_on_a_wrong_answer_in_strict_mode(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "1")
    with pytest.raises(exercises.ExerciseFailed):
        exercises.check_bn_threshold(0.4)


# ---- the probe's silent depth -------------------------------------------------------------------
def test_silent_depth_is_the_first_layer_without_spikes_and_silence_lasts():
    for wm in (0.0, 0.5):
        rate = depth_profile(depth=40, norm=None, weight_mean=wm)["rate"]
        k = silent_depth(norm=None, weight_mean=wm)
        assert rate[k - 2] > 0 and np.all(rate[k - 1:] == 0)
    assert silent_depth(norm=None, weight_mean=0.0) < silent_depth(norm=None, weight_mean=0.5)
    assert silent_depth(norm="tdbn") is None                          # tdBN keeps every layer firing
    assert silent_depth(max_depth=20, norm=None, weight_mean=1.0) is None   # excitatory: it saturates instead


# ---- the plain stack ----------------------------------------------------------------------------
def test_plain_stack_layout_and_argument_errors():
    m = PlainStack(64, 10, depth=3, width=8, norm="tdbn", seed=0)
    kinds = [type(l).__name__ for l in m.layers]
    assert kinds == ["RepeatInput"] + ["Linear", "TDBatchNorm", "LIF"] * 3 + ["Linear", "Readout"]
    assert len(m.hidden) == len(m.lifs) == 3 and all("bias" not in l.params for l in m.hidden)   # beta replaces it
    assert all("bias" in l.params for l in PlainStack(64, 10, depth=2, norm=None).hidden)
    assert [type(l).__name__ for l in PlainStack(64, 10, depth=1, norm="bn").layers][2] == "BatchNorm"
    ref = PlainStack(64, 10, depth=2, gain=1.0, seed=3).hidden[1].params["weight"]
    np.testing.assert_allclose(PlainStack(64, 10, depth=2, gain=2.5, seed=3).hidden[1].params["weight"], 2.5 * ref,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="norm"):
        PlainStack(64, 10, norm="layer")
    with pytest.raises(ValueError, match="depth"):
        PlainStack(64, 10, depth=0)
    with pytest.raises(ValueError, match="gain"):
        PlainStack(64, 10, gain=0)
    with pytest.raises(ValueError, match="flatten"):
        RepeatInput(2).forward(np.zeros((2, 8, 8)))
    assert RepeatInput(3).forward(np.ones((4, 5))).shape == (3, 4, 5)


def test_gradient_profile_reads_the_real_backward_and_leaves_running_stats_alone():
    x, y = _batch()
    m = PlainStack(64, 10, depth=4, width=16, norm="tdbn", seed=1)
    before = [b.copy() for l in m.layers for b in getattr(l, "buffers", {}).values()]
    p = gradient_profile(m, x, y)
    after = [b for l in m.layers for b in getattr(l, "buffers", {}).values()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    np.testing.assert_allclose(p["grad_norm"], [np.linalg.norm(l.grads["weight"]) for l in m.hidden], rtol=1e-6)
    # the same numbers by hand: forward and backward through the layers, the loss gradient of the readout
    from snnkit.nn.losses import SoftmaxCrossEntropy
    loss, g = SoftmaxCrossEntropy()(m.forward(x), y)
    m.backward(g)
    np.testing.assert_allclose(p["grad_norm"], [np.linalg.norm(l.grads["weight"]) for l in m.hidden], rtol=1e-5)
    assert np.isclose(p["loss"], loss) and p["rate"].shape == (4,) and np.all((p["rate"] > 0) & (p["rate"] < 1))


def test_a_silent_layer_passes_no_weight_gradient_upward():
    x, y = _batch()
    p = gradient_profile(PlainStack(64, 10, depth=12, norm=None, seed=0), x, y)
    k = int(np.flatnonzero(p["rate"] == 0)[0])                       # first silent layer (0-based)
    assert np.all(p["grad_norm"][k + 1:] == 0) and np.all(p["grad_norm"][:k + 1] > 0)


def test_biases_of_silent_layers_learn_only_while_u_0_is_inside_the_window():
    x, y = _batch()
    for aa, moves in ((0.5, True), (0.2, False)):                    # |0 - Vth| < aa with Vth = 0.4?
        m = PlainStack(64, 10, depth=12, norm=None, neuron=LIFParameters(v_th=0.4, half_width=aa), seed=0)
        p = gradient_profile(m, x, y)
        top = m.hidden[-1]
        assert p["rate"][-1] == 0
        assert (np.abs(top.grads["bias"]).max() > 0) == moves


@pytest.mark.parametrize("window", [1.25, 0.5])
def test_tdbn_network_is_the_same_for_every_threshold_when_aa_scales_with_it(window):
    """Step 4 of the lesson: u / Vth obeys a recurrence without Vth, and the backward factor
    h(u) k depends on aa / Vth only."""
    x, y = _batch(64)
    stack = lambda norm, v: PlainStack(64, 10, depth=8, norm=norm,                        # noqa: E731
                                       neuron=LIFParameters(v_th=v, half_width=window * v), seed=2)
    ref = gradient_profile(stack("tdbn", 0.4), x, y)
    for v in (0.1, 1.0, 2.0):
        p = gradient_profile(stack("tdbn", v), x, y)
        np.testing.assert_array_equal(p["rate"], ref["rate"])
        np.testing.assert_allclose(p["grad_norm"], ref["grad_norm"], rtol=1e-4)
    bn = gradient_profile(stack("bn", 0.1), x, y)
    assert not np.allclose(bn["grad_norm"], ref["grad_norm"], rtol=0.1)     # plain BN is not invariant ...
    bn1 = gradient_profile(stack("bn", 1.0), x, y)
    np.testing.assert_allclose(bn1["grad_norm"], ref["grad_norm"], rtol=1e-4)   # ... except at alpha Vth = 1


def test_bn_is_tdbn_at_alpha_vth_one():
    x = np.random.default_rng(0).normal(1.0, 3.0, (2, 64, 5))
    np.testing.assert_allclose(TDBatchNorm(5, alpha=0.5, v_th=2.0, dtype=np.float64).forward(x),
                               BatchNorm(5, dtype=np.float64).forward(x), rtol=1e-12)


def test_train_plain_stack_is_deterministic_and_learns_a_little():
    from snnkit.datasets import load
    train, test = load("digits", "train"), load("digits", "test")
    kw = dict(norm="tdbn", depth=3, width=32, epochs=2, batch_size=64, seed=0)
    a, b = train_plain_stack(train, test, **kw), train_plain_stack(train, test, **kw)
    assert a["test_acc"] == b["test_acc"] > 0.3
    assert set(a) >= {"test_acc", "history", "seconds", "model", "init"} and len(a["history"]["epoch"]) == 2
    assert a["init"]["grad_norm"].shape == (3,) and isinstance(a["model"].lifs[0], LIF)
    assert isinstance(a["model"].hidden[0], Linear)
