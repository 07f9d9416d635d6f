import numpy as np
import pytest

from snnkit import nn
from snnkit.datasets import load


class Linear:
    """Softmax regression layer for testing the shared machinery: y = x W + b."""

    def __init__(self, n_in, n_out, seed=0):
        self.params = {"weight": nn.normal((n_in, n_out), std=0.1, seed=seed, dtype=np.float64),
                       "bias": np.zeros(n_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        return x @ self.params["weight"] + self.params["bias"]

    def backward(self, g):
        self.grads["weight"][...] = self.x.T @ g
        self.grads["bias"][...] = g.sum(0)
        return g @ self.params["weight"].T


class Scale:
    """A layer with a buffer (running mean) to check buffers are checkpointed."""

    def __init__(self):
        self.params, self.grads, self.buffers = {}, {}, {"mean": np.zeros(1)}

    def forward(self, x):
        self.buffers["mean"] += 0.1 * (x.mean() - self.buffers["mean"])
        return x

    def backward(self, g):
        return g


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
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (2, 2)]:
        zp, zm = z.copy(), z.copy()
        zp[i, j] += eps
        zm[i, j] -= eps
        assert abs((loss(zp, y)[0] - loss(zm, y)[0]) / (2 * eps) - g[i, j]) < 1e-8


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


def test_nan_gradient_names_layer_and_step(numpy_backend):
    train, _ = _data()
    model = _model()
    x = train[0].copy()
    x[:, 0] = np.nan
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.Adam(model, lr=0.01), progress=False)
    with pytest.raises(nn.NonFiniteError, match=r"(the loss|layer 1 \(Linear\)).*step 0"):
        t.fit((x, train[1]), None, epochs=1)


def test_early_stopping(numpy_backend):
    train, val = _data()
    model = _model()
    t = nn.Trainer(model, nn.SoftmaxCrossEntropy(), nn.SGD(model, lr=1e-12), progress=False, patience=2,
                   monitor="val_loss", min_delta=1e-4)
    h = t.fit(train, val, epochs=20)
    assert t.stopped_early and len(h["epoch"]) < 20
