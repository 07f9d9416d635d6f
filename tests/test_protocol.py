"""Every layer class of every method follows the one layer protocol (snnkit.nn.protocol):

isinstance(Layer); forward / backward shapes; ``grads`` has the keys of ``params`` and their shapes;
``backward`` writes into the arrays of ``grads`` (the same objects before and after: optimizers and
CUDA graphs hold them); ``need_input_grad=False`` returns None; backward before forward raises
RuntimeError with the one message of ``require_forward``. NumPy backend, float64 where a layer
takes a dtype, tiny shapes: the whole file runs in about a second.
"""
import re

import numpy as np
import pytest

from snnkit import bats, nn, stbp
from snnkit.datasets.encoders import latency
from snnkit.nn.protocol import Layer, layer_name, require_forward
from snnkit.s3gd import LeakyReadout, LIFDense as S3GDDense, Network as S3GDNetwork
from snnkit.spikes import SpikeTrains
from snnkit.stbp import plain

F64 = np.float64
BATS_NEURON = bats.LIFParameters(tau_s=0.01, theta=0.004, max_spikes=2, t_max=0.1)     # the layers fire


def _rng(seed=0):
    return np.random.default_rng(seed)


def _spikes(n, seed=0, batch=3):
    """Latency-coded trains [batch, n, 1] on the host (one spike per input, some silent)."""
    return latency(_rng(seed).random((batch, n)), t_max=0.05, dtype=F64, to_device=False)


def _stbp(shape, seed=0):
    return _rng(seed).normal(0.5, 0.5, size=shape)


def _raster(shape, seed=0):
    return (_rng(seed).random(shape) < 0.3).astype(np.float32)


# (id, make() -> (layer, x), model): ``model`` marks the Trainer-level containers of BATS and STBP
# whose input is data, whose backward therefore defaults to need_input_grad=False (docs/design.md;
# the shape check passes True explicitly). S3GD's Network keeps its own default.
CASES = [
    ("bats.LIFDense", lambda: (bats.LIFDense(6, 4, BATS_NEURON, init=(0.0, 1.0), seed=1, dtype=F64), _spikes(6)), False),
    ("bats.SpikeInput", lambda: (bats.SpikeInput(6, dtype=F64), _spikes(6)), False),
    ("bats.ConvLIF", lambda: (bats.ConvLIF((5, 5, 1), 2, 3, BATS_NEURON, init=(0.0, 1.0), seed=1, dtype=F64),
                              _spikes(25)), False),
    ("bats.SpikePool2d", lambda: (bats.SpikePool2d((4, 4, 2)), _spikes(32)), False),
    ("bats.Network", lambda: (bats.Network(bats.SpikeInput(6, F64),
                                           bats.LIFDense(6, 4, BATS_NEURON, init=(0.0, 1.0), seed=1, dtype=F64),
                                           bats.LIFDense(4, 2, BATS_NEURON, init=(0.0, 1.0), seed=2, dtype=F64)),
                              _spikes(6)), True),
    ("stbp.Linear", lambda: (stbp.Linear(5, 3, seed=0, dtype=F64), _stbp((2, 3, 5))), False),
    ("stbp.Conv2d", lambda: (stbp.Conv2d(2, 3, 3, seed=0, dtype=F64, in_shape=(4, 4)), _stbp((2, 3, 4, 4, 2))), False),
    ("stbp.LIF", lambda: (stbp.LIF(), _stbp((2, 3, 5))), False),
    ("stbp.TDBatchNorm", lambda: (stbp.TDBatchNorm(5, dtype=F64), _stbp((2, 3, 5))), False),
    ("stbp.BatchNorm", lambda: (stbp.BatchNorm(5, dtype=F64), _stbp((2, 3, 5))), False),
    ("stbp.AvgPool2d", lambda: (stbp.AvgPool2d(2), _stbp((2, 3, 4, 4, 2))), False),
    ("stbp.GlobalAvgPool", lambda: (stbp.GlobalAvgPool(), _stbp((2, 3, 4, 4, 2))), False),
    ("stbp.Readout", lambda: (stbp.Readout(), _stbp((2, 3, 5))), False),
    ("stbp.DirectInput", lambda: (stbp.DirectInput(2, (4, 4), dtype=F64), _stbp((3, 16))), False),
    ("stbp.RepeatInput", lambda: (plain.RepeatInput(2), _stbp((3, 5)).astype(np.float32)), False),
    ("stbp.BasicBlock", lambda: (stbp.BasicBlock(2, 3, stride=2, seed=0, dtype=F64, in_shape=(4, 4)),
                                 _stbp((2, 3, 4, 4, 2))), False),
    ("stbp.SpikingResNet", lambda: (stbp.resnet19(n_steps=2, in_shape=(4, 4), width=2, blocks=(1, 1), fc=4,
                                                  num_classes=3, dtype=F64), _stbp((3, 16))), True),
    ("stbp.PlainStack", lambda: (plain.PlainStack(5, 3, depth=2, width=4, seed=0),
                                 _stbp((3, 5)).astype(np.float32)), True),
    ("s3gd.LIFDense", lambda: (S3GDDense(5, 4, 0.9, seed=0, dtype=F64, sparse=False), _raster((2, 6, 5))), False),
    ("s3gd.LeakyReadout", lambda: (LeakyReadout(4, 3, seed=0, dtype=F64), _raster((2, 6, 4))), False),
    ("s3gd.LIFDense-sparse", lambda: (S3GDDense(5, 4, 0.9, delta=1.0, seed=0, dtype=F64, sparse=True), _raster((2, 6, 5))),
     False),
    ("s3gd.Network", lambda: (S3GDNetwork(5, 4, 3, seed=0, dtype=F64), _raster((2, 6, 5))), True),
    ("nn.Sequential", lambda: (nn.Sequential(stbp.Linear(5, 4, seed=0, dtype=F64), stbp.LIF(),
                                             stbp.Linear(4, 3, seed=1, dtype=F64)), _stbp((2, 3, 5))), False),
]

def _params(cases):
    return [pytest.param(make, model, id=name) for name, make, model in cases]


def _shape(a):
    return tuple((a.times if isinstance(a, SpikeTrains) else a).shape)


def _grad_like(y, seed=1):
    return _rng(seed).normal(size=_shape(y)).astype((y.times if isinstance(y, SpikeTrains) else y).dtype)


@pytest.fixture(autouse=True)
def _numpy(numpy_backend):
    yield


@pytest.mark.parametrize("make, model", _params(CASES))
def test_layer_follows_the_protocol(make, model):
    layer, x = make()
    assert isinstance(layer, Layer)
    assert isinstance(layer.params, dict) and isinstance(layer.grads, dict)
    assert set(layer.grads) == set(layer.params)
    held = dict(layer.grads)                               # what an optimizer or a CUDA graph holds
    for k, p in layer.params.items():
        assert layer.grads[k].shape == p.shape, k
        held[k][...] = 0                                   # as Optimizer.zero_grad leaves them

    y = layer.forward(x)
    gx = layer.backward(_grad_like(y), need_input_grad=True)
    assert gx is not None and _shape(gx) == _shape(x)
    assert set(layer.grads) == set(layer.params)
    for k, p in layer.params.items():
        assert layer.grads[k] is held[k], f"backward rebound grads[{k!r}] instead of writing into it"
        assert layer.grads[k].shape == p.shape, k
        assert np.isfinite(layer.grads[k]).all(), k
    if layer.params:                                       # the held arrays received the gradient
        assert any(np.abs(g).max() > 0 for g in held.values()), "backward wrote no gradient into grads"

    y = layer.forward(x)
    assert layer.backward(_grad_like(y), need_input_grad=False) is None
    for k in layer.params:
        assert layer.grads[k] is held[k], k
    if model:        # a model's input is data: by default no input gradient
        layer.forward(x)
        assert layer.backward(_grad_like(y)) is None


@pytest.mark.parametrize("make, model", _params(CASES))
def test_backward_before_forward_names_the_fix(make, model):
    layer, x = make()
    y_shape = _shape(make()[0].forward(x))                 # a fresh twin tells the output's shape
    with pytest.raises(RuntimeError, match=r"^\S+\.backward called before forward: run forward on the batch first$") \
            as e:
        layer.backward(np.zeros(y_shape))
    if not hasattr(layer, "layers"):                       # a leaf names itself; a container, its last layer
        assert str(e.value).startswith(f"{layer_name(layer)}.backward")


def test_every_layer_class_is_covered():
    """A new layer class in bats/stbp/s3gd/nn must join CASES (the protocol holds for all or none)."""
    import inspect
    covered = {name.split(".")[1] for name, _, _ in CASES}
    found = set()
    for mod in (bats, stbp, plain):
        public = getattr(mod, "__all__", None) or [n for n, o in vars(mod).items()
                                                    if getattr(o, "__module__", None) == mod.__name__]
        for name in public:
            obj = getattr(mod, name)
            if inspect.isclass(obj) and callable(getattr(obj, "backward", None)):
                found.add(name)
    assert found and found <= covered, sorted(found - covered)


def test_require_forward_message():
    class Thing:
        name = "thing1"
    with pytest.raises(RuntimeError, match=re.escape("thing1.backward called before forward: run forward on the "
                                                     "batch first")):
        require_forward(Thing(), None)
    require_forward(Thing(), ())                           # anything but None is a cache


def test_sequential_views_are_the_layers_own_arrays():
    a, b = stbp.Linear(3, 2, seed=0, dtype=F64), stbp.Linear(2, 2, seed=1, dtype=F64)
    seq = nn.Sequential(a, None, b)                        # None entries are skipped (optional layers)
    assert seq.layers == [a, b]
    assert set(seq.params) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    assert seq.params["1.weight"] is b.params["weight"] and seq.grads["0.bias"] is a.grads["bias"]


def test_sequential_skips_input_gradients_up_to_the_first_trainable_layer():
    calls = []

    class Probe:
        params, grads = {}, {}

        def forward(self, x):
            return x

        def backward(self, g, need_input_grad=True):
            calls.append(need_input_grad)
            return g if need_input_grad else None

    lin = stbp.Linear(3, 3, seed=0, dtype=F64)
    seq = nn.Sequential(Probe(), lin, Probe())
    x = _stbp((2, 1, 3))
    seq.forward(x)
    assert seq.backward(np.ones_like(x), need_input_grad=False) is None
    assert calls == [True, False]                          # the last Probe passes on; the first gets False
    assert np.any(lin.grads["weight"] != 0)                # the first trainable layer still learned


# ---- parameter objects and the README glossary ---------------------------------------------------
def _glossary():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    m = re.search(r"^## Glossary\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    assert m, "README has no '## Glossary' section"
    return m.group(1)


def test_glossary_maps_the_threshold_and_every_parameter_field():
    import dataclasses
    import inspect
    gloss = _glossary()
    row = next(line for line in gloss.splitlines() if line.startswith("| $\\vartheta$ | threshold"))
    _, _, _, bats_cell, s3gd_cell, stbp_cell, _ = row.split("|")
    assert "`theta`" in bats_cell and "theta" in {f.name for f in dataclasses.fields(bats.LIFParameters)}
    assert "`v_th`" in stbp_cell and "v_th" in {f.name for f in dataclasses.fields(stbp.LIFParameters)}
    import snnkit.s3gd as s3gd           # S3GD's name: an argument of its layer or a field of its parameters
    s3gd_names = set(inspect.signature(S3GDDense).parameters) | {
        f.name for obj in vars(s3gd).values() if dataclasses.is_dataclass(obj) for f in dataclasses.fields(obj)}
    assert "`threshold`" in s3gd_cell and "threshold" in s3gd_names
    for cls in (bats.LIFParameters, stbp.LIFParameters):
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in gloss, f"the Glossary does not name {cls.__module__}.LIFParameters.{f.name}"


def test_parameter_objects_are_frozen_checked_and_shared():
    import dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        stbp.STBP.v_th = 1.0
    with pytest.raises(ValueError, match="half_width"):
        stbp.LIFParameters(half_width=-1)
    with pytest.raises(ValueError, match="theta"):
        bats.LIFParameters(0.01, theta=0.0)
    n = bats.LIFParameters(0.01, 0.5)
    assert n.delta_theta == 0.5 and n.tau == 0.02                  # delta_theta = theta, tau = 2 tau_s
    assert n.replace(theta=0.2).delta_theta == 0.2                  # ... and it follows a new threshold
    assert bats.LIFParameters(0.01, 0.5, delta_theta=0.1).replace(theta=0.2).delta_theta == 0.1
    layer = bats.LIFDense(3, 2, n, dtype=F64)
    layer.dt = 1e-3                                                 # a new grid: a new (checked) neuron
    assert layer.neuron == n.replace(dt=1e-3) and n.dt is None
    with pytest.raises(ValueError, match="dt"):
        layer.dt = -1.0
    net = stbp.resnet19(n_steps=1, in_shape=(4, 4), width=2, blocks=(1,), fc=4, num_classes=2,
                        neuron=stbp.LIFParameters(v_th=0.5))
    assert {lif.neuron.v_th for lif in net.lif_layers()} == {0.5}   # one object, every LIF of the model
