import numpy as np
import pytest

from snnkit import nn
from snnkit.datasets import load
from snnkit.datasets.encoders import poisson

from gradcheck import fd_check


class Linear:
    """Softmax regression layer for testing the shared machinery: y = x W + b."""

    def __init__(self, n_in, n_out, seed=0):
        self.params = {"weight": nn.normal((n_in, n_out), std=0.1, seed=seed, dtype=np.float64),
                       "bias": np.zeros(n_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        return x @ self.params["weight"] + self.params["bias"]

    def backward(self, g, need_input_grad=True):
        self.grads["weight"][...] = self.x.T @ g
        self.grads["bias"][...] = g.sum(0)
        return g @ self.params["weight"].T if need_input_grad else None


class Scale:
    """A layer with a buffer (running mean) to check buffers are checkpointed."""

    def __init__(self):
        self.params, self.grads, self.buffers = {}, {}, {"mean": np.zeros(1)}

    def forward(self, x):
        self.buffers["mean"] += 0.1 * (x.mean() - self.buffers["mean"])
        return x

    def backward(self, g, need_input_grad=True):
        return g if need_input_grad else None


def _model(seed=0):
    return nn.Sequential(Scale(), Linear(64, 10, seed))


def test_adam_matches_the_textbook_formula(numpy_backend):
    lin = Linear(3, 2)
    w0 = lin.params["weight"].copy()
    opt = nn.Adam([lin], lr=0.01)
    m = v = 0
    w = w0.copy()
    for t in range(1, 4):
        g = np.full_like(w, 0.5 * t)
        lin.grads["weight"][...] = g
        lin.grads["bias"][...] = 0
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(lin.params["weight"], w, rtol=1e-12)


def test_sgd_momentum(numpy_backend):
    lin = Linear(2, 2)
    w = lin.params["weight"].copy()
    opt = nn.SGD([lin], lr=0.1, momentum=0.9)
    lin.grads["weight"][...] = 1.0
    opt.step(); opt.step()
    np.testing.assert_allclose(lin.params["weight"], w - 0.1 * 1.0 - 0.1 * 1.9)
    with pytest.raises(ValueError, match="lr"):
        nn.SGD([lin], lr=0)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(4, 5)), np.array([0, 3, 1, 4])
    loss = nn.SoftmaxCrossEntropy()
    v, g = loss(z, y)
    fd_check(lambda: loss(z, y)[0], [z], [g], eps=1e-6, rtol=0, atol=1e-8, entries=[[(0, 0), (1, 3), (2, 2)]],
             min_checked=3)


def _data():
    tr, va = load("digits", "train"), load("digits", "validation")
    return (tr.x.astype(np.float64), tr.y), (va.x.astype(np.float64), va.y)


def test_trainer_learns_digits(numpy_backend):
    train, val = _data()
    model = _model()
    tr = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.05), batch_size=64, progress=False)
    h = tr.fit(train, val, epochs=3)
    assert h["val_acc"][-1] > 0.85 and len(h["epoch"]) == 3


def test_resume_continues_exactly(tmp_path, numpy_backend):
    train, val = _data()
    ref = _model()
    t_ref = nn.Trainer(ref, nn.SoftmaxCrossEntropy(), nn.Adam(ref, lr=0.01), batch_size=50, seed=3,
                       progress=False)
    t_ref.fit(train, val, epochs=4)

    ck = tmp_path / "run" / "ck.npz"
    a = _model()
    ta = nn.Trainer(a, nn.SoftmaxCrossEntropy(), nn.Adam(a, lr=0.01), batch_size=50, seed=3,
                    checkpoint=ck, progress=False)
    ta.fit(train, val, epochs=2)                 # "interrupted" after two epochs
    assert ck.exists() and not list(ck.parent.glob("*.tmp"))

    b = _model(seed=99)                          # a fresh process would build a fresh model
    tb = nn.Trainer(b, nn.SoftmaxCrossEntropy(), nn.Adam(b, lr=0.01), batch_size=50, seed=3,
                    checkpoint=ck, progress=False)
    tb.fit(train, val, epochs=4, resume=True)
    np.testing.assert_array_equal(b.layers[1].params["weight"], ref.layers[1].params["weight"])
    np.testing.assert_array_equal(b.layers[0].buffers["mean"], ref.layers[0].buffers["mean"])
    assert tb.history == t_ref.history | {"time": tb.history["time"]}
    assert tb.step_count == t_ref.step_count


def test_checkpoint_shape_mismatch_is_explained(tmp_path, numpy_backend):
    train, val = _data()
    m = _model()
    t = nn.Trainer(m, nn.SoftmaxCrossEntropy(), nn.Adam(m, lr=0.01), progress=False, checkpoint=tmp_path / "c.npz")
    t.fit(train, None, epochs=1)
    other = nn.Sequential(Scale(), Linear(64, 3))
    t2 = nn.Trainer(other, nn.SoftmaxCrossEntropy(), nn.Adam(other, lr=0.01), progress=False)
    with pytest.raises(ValueError, match="architecture differs"):
        t2.load(tmp_path / "c.npz")


def test_nan_input_is_named_as_the_input(numpy_backend):
    train, _ = _data()
    model = _model()
    x = train[0].copy()
    x[:, 0] = np.nan
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"model input .*NaN/Inf at epoch 0, step 0"):
        t.fit((x, train[1]), None, epochs=1)


def _poison_backward(layer, returned_too):
    """Make ``layer.backward`` write NaN into its weight gradient (and, if ``returned_too``, into the
    gradient it passes on, so that every earlier layer's gradients become NaN as well)."""
    clean = layer.backward

    def backward(g, need_input_grad=True):
        gx = clean(g, need_input_grad)
        layer.grads["weight"][0, 0] = np.nan
        if returned_too:
            gx = gx.copy()
            gx[:, 0] = np.nan
        return gx
    layer.backward = backward


class NaNPass:
    """No parameters; its backward returns NaN (its forward is the identity)."""
    params, grads = {}, {}

    def forward(self, x):
        return x

    def backward(self, g, need_input_grad=True):
        return g * np.nan if need_input_grad else None


def test_nan_gradient_names_layer_and_step(numpy_backend):
    # the loss is finite; layer 1's backward makes its own grads and (passed on) layer 0's NaN:
    # the error names layer 1, where it started, not layer 0, the first one in forward order
    train, _ = _data()
    model = nn.Sequential(Linear(64, 32, seed=1), Linear(32, 10, seed=2))
    _poison_backward(model.layers[1], returned_too=True)
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), progress=False)
    w0 = model.layers[1].params["weight"].copy()
    with pytest.raises(nn.NonFiniteError, match=r"gradient 'weight' of layer 1 \(Linear\) is NaN/Inf at epoch 0, "
                                                r"step 0") as e:
        t.fit(train, None, epochs=1)
    assert "layer 0 (Linear)" in str(e.value)               # listed among the layers with NaN gradients
    np.testing.assert_array_equal(model.layers[1].params["weight"], w0)   # no step was taken
    assert "backward" not in vars(model.layers[0])          # the diagnostic wrappers are gone again


def test_nan_gradient_from_a_layer_without_params_is_named(numpy_backend):
    train, _ = _data()
    model = nn.Sequential(Linear(64, 32, seed=1), NaNPass(), Linear(32, 10, seed=2))
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"backward of layer 1 \(NaNPass\) returned a NaN/Inf input "
                                                r"gradient at epoch 0, step 0"):
        t.fit(train, None, epochs=1)


def test_nan_gradient_in_a_later_step(numpy_backend):
    train, _ = _data()
    model = nn.Sequential(Linear(64, 32, seed=1), Linear(32, 10, seed=2))
    clean = model.layers[1].backward
    calls = []

    def backward(g, need_input_grad=True):                 # NaN from the fourth backward on
        calls.append(1)
        gx = clean(g, need_input_grad)
        if len(calls) >= 4:
            model.layers[1].grads["bias"][:] = np.inf
        return gx
    model.layers[1].backward = backward
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"gradient 'bias' of layer 1 \(Linear\).*epoch 0, step 3"):
        t.fit(train, None, epochs=1)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_loss_names_the_first_layer_with_a_non_finite_output(numpy_backend):
    # finite input and weights; layer 2's forward overflows, so its output (and layer 3's, and the loss)
    # are NaN/Inf (an inf *weight* is caught before the first step, see test_bad_input_trainer.py)
    class Overflowing(Linear):
        def forward(self, x):
            return super().forward(x) * np.inf
    train, _ = _data()
    model = nn.Sequential(Scale(), Linear(64, 32, seed=1), Overflowing(32, 32, seed=2), Linear(32, 10, seed=3))
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), batch_size=32, progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"layer 2 \(Overflowing\) returned a NaN/Inf forward output from a "
                                                r"finite input at epoch 0, step 0 \(the loss became nan\)"):
        t.fit(train, None, epochs=1)
    # the diagnostic re-run of the forward left the running statistics as one forward made them
    first = next(nn.trainer.iterate_batches(len(train[1]), 32, 0, 0))
    np.testing.assert_allclose(model.layers[0].buffers["mean"], 0.1 * train[0][first].mean(), rtol=1e-12)
    assert all("forward" not in vars(l) for l in model.layers)


def test_nan_loss_with_finite_layers_blames_the_loss(numpy_backend):
    train, _ = _data()
    model = _model()

    class BadLoss(nn.SoftmaxCrossEntropy):
        def __call__(self, z, y):
            v, g = super().__call__(z, y)
            return float("inf"), g
    t = nn.Trainer(model, BadLoss(), nn.Adam(model, lr=0.01), progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"loss became inf at epoch 0, step 0 although every layer's "
                                                r"forward output is finite"):
        t.fit(train, None, epochs=1)


def _poisson(x, r):
    """A stochastic encoder: the mean of 4 Bernoulli(x) draws per feature."""
    return poisson(x, n_steps=4, rng=r, dtype=np.float64).mean(1)


def _resumable(model, ck=None, every=None):
    # lr schedule: learn for two epochs, then (almost) stop, so early stopping fires after epoch 4;
    # a resume that lost the early-stopping state would stop one epoch later
    return nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), batch_size=50, seed=5,
                      encode=_poisson, lr_schedule=lambda e: 0.05 / (e + 1) if e < 2 else 1e-9,
                      patience=2, monitor="val_loss", min_delta=1e-4, checkpoint=ck, checkpoint_every=every,
                      progress=False)


def test_resume_in_the_middle_of_an_epoch_is_exact(tmp_path, numpy_backend):
    train, val = _data()
    ref = _model()
    t_ref = _resumable(ref)
    t_ref.fit(train, val, epochs=10)
    assert t_ref.stopped_early and len(t_ref.history["epoch"]) == 4

    n_batches = -(-len(train[1]) // 50)                       # 26
    ck = tmp_path / "ck.npz"
    a = _model()
    ta = _resumable(a, ck, every=5)
    clean_step = ta.train_step

    def step(*args):                                          # Ctrl-C in epoch 2, at its 8th batch
        if ta.step_count == 2 * n_batches + 7:
            raise KeyboardInterrupt
        return clean_step(*args)
    ta.train_step = step
    with pytest.raises(KeyboardInterrupt):
        ta.fit(train, val, epochs=10)
    assert not list(tmp_path.glob("*.tmp"))

    peek = _resumable(_model(seed=7))
    peek.load(ck)                                             # the last checkpoint: step 55, epoch 2, batch 3
    assert (peek.epoch, peek.step_count, peek.batch_in_epoch) == (2, 55, 3)
    assert peek.best is not None and peek.best_epoch == 2

    b = _model(seed=99)                                       # a fresh process builds a fresh model
    tb = _resumable(b, ck, every=5)
    tb.fit(train, val, epochs=10, resume=True)
    for lb, lr in zip(b.layers, ref.layers):
        for k in lr.params:
            np.testing.assert_array_equal(lb.params[k], lr.params[k])
        for k in getattr(lr, "buffers", {}):
            np.testing.assert_array_equal(lb.buffers[k], lr.buffers[k])
    for k in t_ref.opt.state:
        np.testing.assert_array_equal(tb.opt.state[k], t_ref.opt.state[k])
    assert tb.history == t_ref.history | {"time": tb.history["time"]}
    assert (tb.step_count, tb.opt.t, tb.opt.lr) == (t_ref.step_count, t_ref.opt.t, t_ref.opt.lr)
    assert (tb.best, tb.best_epoch, tb.stopped_early) == (t_ref.best, t_ref.best_epoch, True)


def test_mid_epoch_resume_refuses_other_batches(tmp_path, numpy_backend):
    train, val = _data()
    ck = tmp_path / "ck.npz"
    a = _model()
    ta = _resumable(a, ck, every=3)
    ta.fit(train, val, epochs=1)
    ta.batch_in_epoch, ta._partial = 3, (1.0, 1.0, 150, 0.1)    # as if stopped after batch 3 of epoch 1
    ta._data_shape = (len(train[1]), 50)
    ta.save(ck)
    tb = _resumable(_model(), ck)
    tb.batch_size = 64
    with pytest.raises(ValueError, match="middle of epoch 1.*batches of 50.*batches of 64"):
        tb.fit(train, val, epochs=2, resume=True)


def test_early_stopping(numpy_backend):
    train, val = _data()
    model = _model()
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.SGD(model, lr=1e-12), progress=False, patience=2,
                   monitor="val_loss", min_delta=1e-4)
    h = t.fit(train, val, epochs=20)
    assert t.stopped_early and len(h["epoch"]) < 20
