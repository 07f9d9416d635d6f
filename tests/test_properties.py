"""Property-based checks of bad input (issue 15): Hypothesis throws generated arguments -- NaN,
Inf, negative and huge values, wrong ranks and layouts, empty and size-1 batches, wrong dtypes,
out-of-range labels -- at every public layer, loss, ``bats.simulate``, encoder and
``datasets.load``, and each call must end in exactly one of two ways:

* a ValueError / TypeError / RuntimeError whose message names one of the call's arguments, or
* a finite result (spike times may be +inf: "no spike") equal to an independent reference
  written here as plain loops over the equations;
* for the linear (non-spiking) STBP layers and the softmax loss only: NaN/Inf in the input gives
  NaN/Inf in the output, never a finite one. That is loud, and the Trainer then names the first
  layer that produced it; a *spiking* layer, where NaN would silently mean "no spike", refuses it.

Anything else (an IndexError or KeyError from deep inside NumPy, a NaN result, a result that
differs from the reference) fails. Derandomized, with few small examples, so that it is stable in
CI and runs in well under two minutes on a 2-core machine.
"""
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from snnkit import bats, datasets, nn, s3gd, stbp  # noqa: E402
from snnkit.bats.neuron import grid_up  # noqa: E402
from snnkit.spikes import SpikeTrains  # noqa: E402

pytestmark = [pytest.mark.usefixtures("numpy_backend"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]   # NumPy's own, on NaN inputs

PROFILE = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
FEW = settings(PROFILE, max_examples=15)
ERRORS = (ValueError, TypeError, RuntimeError)


def outcome(fn, names):
    """Call ``fn``; a clear error (naming one of ``names``) gives None, anything else raises."""
    try:
        res = fn()
    except ERRORS as e:
        msg = str(e)
        assert any(n in msg for n in names), f"{type(e).__name__} does not name any of {names}: {msg}"
        hypothesis.event("clear error")
        return None
    hypothesis.event("result (checked against the reference)")
    return res


# ---------------------------------------------------------------- strategies
ODD = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e30, -1e30]
DTYPES = [np.float64, np.float32, np.float32, np.float64, np.int64, np.complex128, np.float16, np.bool_]


def scalar(good, odd=ODD, p_odd=0.25):
    """Mostly ``good`` values, sometimes one of ``odd`` (NaN, inf, negative, zero, huge, a string)."""
    return st.one_of(st.sampled_from(good), st.sampled_from(list(odd) + ["a", None, True])) if p_odd else \
        st.sampled_from(good)


@st.composite
def array(draw, shape, good=st.floats(0, 1), p_bad=0.2, dtypes=DTYPES):
    """An array of ``shape`` whose entries are mostly ``good`` and sometimes NaN/Inf/huge/negative,
    in a dtype that is mostly float32/float64."""
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    n = int(np.prod(shape, dtype=np.int64))
    vals = draw(st.lists(st.one_of(good, st.sampled_from(ODD)) if draw(st.booleans()) and draw(
        st.floats(0, 1)) < p_bad else good, min_size=n, max_size=n))
    a = np.array(vals, dtype=np.float64).reshape(shape)
    dt = draw(st.sampled_from(dtypes))
    with np.errstate(invalid="ignore", over="ignore"):
        return a.astype(dt)


def shape_around(dims, lo=0, hi=3, p_rank=0.15):
    """A shape close to ``dims`` (None entries free in [lo, hi]); sometimes one rank more or less."""
    @st.composite
    def build(draw):
        s = [draw(st.integers(lo, hi)) if d is None else d for d in dims]
        if draw(st.floats(0, 1)) < p_rank:
            s = s[:-1] if draw(st.booleans()) and len(s) > 1 else s + [draw(st.integers(1, 2))]
        return tuple(s)
    return build()


def flat(x):
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))).astype(np.float64)


def finite_or_inf_times(t):
    return not np.isnan(t).any() and not np.isneginf(t).any()


# ---------------------------------------------------------------- references (plain loops)
def ref_simulate(w, in_times, tau_s, theta, delta_theta, S, t_max, dt):
    """Per-neuron event loop of the BATS neuron (snnkit/bats/neuron.py), in the weights' dtype."""
    f = w.dtype.type
    tau = 2.0 * tau_s
    c, r = theta / tau, delta_theta / tau
    B, N = in_times.shape[0], w.shape[0]
    used = grid_up(in_times, dt) if dt is not None else in_times
    times = np.full((B, N, S), np.inf, w.dtype)
    count = np.zeros((B, N), np.int64)
    for b in range(B):
        flat = used[b].reshape(-1)
        order = np.argsort(flat, kind="stable")
        ev = [(flat[k], k // used.shape[2]) for k in order if np.isfinite(flat[k])]
        for n in range(N):
            a = bb = f(0)
            last = last_d = f(-np.inf)
            for k, (tk, i) in enumerate(ev):
                a = f(a + w[n, i] * np.exp(f(tk) / f(tau_s)).astype(w.dtype))
                bb = f(bb + w[n, i] * np.exp(f(tk) / f(2 * tau_s)).astype(w.dtype))
                limit = min(ev[k + 1][0] if k + 1 < len(ev) else np.inf, t_max)
                lower = max(tk, last)
                while True:
                    disc = f(bb * bb - f(4 * c) * a)
                    if disc < 0:
                        break
                    x = np.sqrt(f(max(disc, 0)))
                    den = f(bb + x)
                    if den <= 0:
                        break
                    z = f(2 * a / den)
                    if z <= 0:
                        break
                    ts = f(f(tau) * np.log(z))
                    if not (ts > lower and ts <= limit):
                        break
                    td = ts if dt is None else grid_up(np.array([ts]), dt)[0]
                    if dt is not None and not td > last_d:
                        break
                    if count[b, n] < S:
                        times[b, n, count[b, n]] = td
                    count[b, n] += 1
                    bb = f(bb - f(r) * z)
                    last = lower = ts
                    last_d = td
    return times, count


def ref_lif_s3gd(s_in, W, beta, threshold):
    B, T, _ = s_in.shape
    h = np.einsum("bti,ij->btj", s_in.astype(np.float64), W.astype(np.float64))
    S = np.zeros_like(h)
    v = np.zeros((B, W.shape[1]))
    s = np.zeros_like(v)
    for t in range(T):
        v = beta * v + h[:, t] - s
        s = (v >= threshold).astype(float)
        S[:, t] = s
    return S


def ref_lif_stbp(x, tau, v_th):
    u = np.zeros(x.shape[1:])
    o = np.zeros(x.shape[1:])
    out = np.zeros(x.shape)
    for t in range(x.shape[0]):
        u = tau * u * (1 - o) + x[t]
        o = (u >= v_th).astype(float)
        out[t] = o
    return out


# ---------------------------------------------------------------- BATS
SIM_NAMES = ("weight", "in_times", "tau_s", "theta", "delta_theta", "max_spikes", "t_max", "dt")


@st.composite
def sim_args(draw):
    """Valid arguments with one thing broken half of the time (several broken at once only tell
    which check runs first)."""
    broken = draw(st.sampled_from([None] * 10 + ["w_dtype", "w_value", "w_shape", "t_value", "t_unsorted",
                                                 "t_shape", "t_dtype", "tau_s", "theta", "delta_theta",
                                                 "max_spikes", "t_max", "dt"]))
    n_out, n_in, B, S = (draw(st.integers(1, 3)) for _ in range(4))
    w = np.array(draw(st.lists(st.floats(-2, 6), min_size=n_out * n_in, max_size=n_out * n_in))).reshape(n_out, n_in)
    w = w.astype(draw(st.sampled_from([np.float32, np.float64])))
    t = np.array(draw(st.lists(st.one_of(st.floats(0, 0.04), st.just(np.inf)), min_size=B * n_in * S,
                               max_size=B * n_in * S))).reshape(B, n_in, S)
    t = np.sort(t, axis=2)
    kw = dict(tau_s=draw(st.sampled_from([0.005, 0.01])), theta=draw(st.sampled_from([0.3, 1.0])),
              delta_theta=draw(st.sampled_from([None, 0.5])), max_spikes=draw(st.sampled_from([1, 3])),
              t_max=draw(st.sampled_from([np.inf, 0.05])), dt=draw(st.sampled_from([None, 0.002])))
    odd = st.sampled_from(ODD + ["a", True, 1 + 1j])
    if broken == "w_dtype":
        w = w.astype(draw(st.sampled_from([np.int64, np.complex128, np.float16, np.bool_])))
    elif broken == "w_value":
        w.flat[draw(st.integers(0, w.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e7]))
    elif broken == "w_shape":
        w = draw(st.sampled_from([w[:, :0], w[:0], w[None], w[0], w[:, :1] if n_in > 1 else w[:, :0]]))
    elif broken == "t_value":
        t.flat[draw(st.integers(0, t.size - 1))] = draw(st.sampled_from([np.nan, -np.inf, -0.001, 1e3]))
    elif broken == "t_unsorted" and S > 1:
        t[..., :] = t[..., ::-1]
        t[0, 0, 0] = 0.01
    elif broken == "t_shape":
        t = draw(st.sampled_from([t[:0], t[:, :, :0], t[..., 0], np.concatenate([t, t[:, :1]], 1)]))
    elif broken == "t_dtype":
        t = t.astype(np.complex128)
    elif broken is not None and broken in kw:
        kw[broken] = draw(odd if broken != "max_spikes" else st.sampled_from([0, 2.5, -1, True, 1e10]))
    return w, t, kw


@PROFILE
@given(sim_args())
def test_simulate(args):
    w, t, kw = args
    sim = outcome(lambda: bats.simulate(w, t, **kw), SIM_NAMES)
    if sim is None:
        return
    assert finite_or_inf_times(sim.times)
    dt_ = kw["delta_theta"] if kw["delta_theta"] is not None else kw["theta"]
    ref_t, ref_n = ref_simulate(w, t.astype(w.dtype), kw["tau_s"], kw["theta"], dt_, int(kw["max_spikes"]),
                                kw["t_max"], kw["dt"])
    np.testing.assert_array_equal(sim.counts + sim.overflow, ref_n)
    np.testing.assert_allclose(sim.times, ref_t, rtol=1e-5 if w.dtype == np.float32 else 1e-10)


@st.composite
def trains(draw, n, S=None):
    B = draw(st.integers(0, 2))
    S = draw(st.integers(1, 2)) if S is None else S
    t = draw(array((B, n, S), good=st.one_of(st.floats(0, 0.03), st.just(np.inf)), p_bad=0.2,
                   dtypes=[np.float64, np.float32]))
    if draw(st.floats(0, 1)) < 0.85:
        t = np.sort(t, axis=2)
    counts = np.isfinite(t).sum(axis=2).astype(np.int32)
    if draw(st.floats(0, 1)) < 0.15 and counts.size:
        counts = counts + 1                          # the probe's SpikePool2d case: counts disagree
    return SpikeTrains(t, counts, np.zeros_like(counts))


LAYER_NAMES = ("input spikes", "in_times", "weight", "spikes", "ConvLIF", "SpikePool2d", "SpikeInput")


@PROFILE
@given(trains(3), st.sampled_from([np.float32, np.float64]), st.sampled_from([None, 0.002]))
def test_bats_dense_layer(spikes, dtype, dt):
    layer = bats.LIFDense(3, 2, bats.LIFParameters(0.005, 0.4, max_spikes=2, dt=dt), seed=1, init=(0.0, 3.0), dtype=dtype)
    first = outcome(lambda: bats.SpikeInput(3, dtype).forward(spikes), LAYER_NAMES)
    out = outcome(lambda: layer.forward(spikes), LAYER_NAMES)
    assert (first is None) == (out is None)          # the input layer and a dense layer agree on validity
    if out is None:
        return
    np.testing.assert_array_equal(first.times, spikes.times.astype(dtype))
    w = layer.params["weight"]
    ref_t, ref_n = ref_simulate(w, spikes.times.astype(dtype), 0.005, 0.4, 0.4, 2, np.inf, dt)
    np.testing.assert_array_equal(out.counts + out.overflow, ref_n)
    np.testing.assert_allclose(out.times, ref_t, rtol=1e-5)


@FEW
@given(trains(16), st.booleans())
def test_bats_conv_and_pool(spikes, pool_first):
    shape = (4, 4, 1)
    if pool_first:
        layer = bats.SpikePool2d(shape)
        out = outcome(lambda: layer.forward(spikes), LAYER_NAMES)
        if out is None:
            return
        t = spikes.times
        for b in range(t.shape[0]):
            for i in range(2):
                for j in range(2):
                    idx = [(2 * i + di) * 4 + 2 * j + dj for di in (0, 1) for dj in (0, 1)]
                    merged = sorted(v for k in idx for v in t[b, k] if np.isfinite(v))
                    got = [v for v in out.times[b, i * 2 + j] if np.isfinite(v)]
                    assert got == merged and out.counts[b, i * 2 + j] == len(merged)
        return
    layer = bats.ConvLIF(shape, 2, 3, bats.LIFParameters(0.005, 0.3, max_spikes=2), seed=2, init=(0.0, 2.0), dtype=np.float64)
    out = outcome(lambda: layer.forward(spikes), LAYER_NAMES)
    if out is None:
        return
    # reference: the same layer as a dense one with a structured weight matrix (zeros off the patch)
    k = layer.params["weight"]                          # [C_out, fx, fy, C_in]
    dense = np.zeros((2 * 2 * 2, 16))
    for x in range(2):
        for y in range(2):
            for c in range(2):
                for i in range(3):
                    for j in range(3):
                        dense[(x * 2 + y) * 2 + c, (x + i) * 4 + (y + j)] = k[c, i, j, 0]
    ref_t, ref_n = ref_simulate(dense, spikes.times.astype(np.float64), 0.005, 0.3, 0.3, 2, np.inf, None)
    np.testing.assert_array_equal(out.counts + out.overflow, ref_n)
    np.testing.assert_allclose(out.times, ref_t, rtol=1e-10)


@st.composite
def labels_for(draw, B, C):
    """Valid labels half of the time; else out of range, negative, float, bool, wrong length, a list."""
    y = np.array(draw(st.lists(st.integers(0, max(C - 1, 0)), min_size=B, max_size=B)), dtype=np.int64)
    kind = draw(st.sampled_from(["ok", "ok", "ok", "list", "range", "negative", "float", "whole_float", "bool",
                                 "length"]))
    if kind == "list":
        return y.tolist()
    if kind == "range" and B:
        y[draw(st.integers(0, B - 1))] = C
    elif kind == "negative" and B:
        y[0] = -3
    elif kind == "float":
        return y + 0.7
    elif kind == "whole_float":
        return y.astype(np.float64)
    elif kind == "bool":
        return y.astype(bool)
    elif kind == "length":
        return np.concatenate([y, y[:1]]) if B else np.array([0])
    return y


@PROFILE
@given(trains(3, S=2), st.booleans(), st.data())
def test_bats_losses(out, ttfs, data):
    labels = data.draw(labels_for(out.times.shape[0], 3))
    loss = bats.TTFSCrossEntropy(tau_loss=0.005) if ttfs else bats.SpikeCountLoss(4, 1)
    res = outcome(lambda: loss(out, labels), ("labels", "out", "SpikeTrains"))
    if res is None:
        return
    value, grad = res
    y = np.asarray(labels)
    B = len(y)
    assert np.isfinite(value) and np.isfinite(grad).all()
    if ttfs:
        t0 = out.times[:, :, 0]
        latest = np.where(np.isfinite(t0), t0, -np.inf).max(axis=1, keepdims=True)
        t = np.where(np.isfinite(t0), t0, np.where(np.isfinite(latest), latest + 0.005, 0))
        z = -t / 0.005
        lp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
        ref = -lp[np.arange(B), y].mean()
    else:
        n = out.counts + out.overflow
        target = np.full(n.shape, 1.0)
        target[np.arange(B), y] = 4.0
        ref = 0.5 * ((target - n) ** 2).sum() / B
    assert value == pytest.approx(ref, rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- S3GD
@PROFILE
@given(st.data(), st.sampled_from([True, False]))
def test_s3gd_layers(data, sparse):
    x = data.draw(array(shape_around([None, data.draw(st.integers(0, 4)), 4], p_rank=0.15), good=st.sampled_from(
        [0.0, 0.0, 1.0, 0.5])))
    threshold = data.draw(scalar([1.0, 0.5], p_odd=0.2))
    build = lambda: s3gd.LIFDense(4, 3, 0.9, threshold=threshold, sparse=sparse, seed=3, weight_scale=4.0,  # noqa
                                  dtype=np.float64)
    layer = outcome(build, ("threshold",))
    if layer is None:
        return
    S = outcome(lambda: layer.forward(x), ("input",))
    if S is None:
        return
    np.testing.assert_array_equal(S, ref_lif_s3gd(x, layer.params["weight"], 0.9, threshold))
    ro = s3gd.LeakyReadout(3, 2, beta=0.8, dtype=np.float64, seed=4)
    logits = ro.forward(S)
    z = S @ ro.params["weight"]
    out, acc = np.zeros_like(z), np.zeros((z.shape[0], 2))
    for t in range(z.shape[1]):
        acc = 0.8 * acc + 0.2 * z[:, t]
        out[:, t] = acc
    np.testing.assert_allclose(logits, out.max(axis=1), rtol=1e-12)
    # the whole network (hidden1 -> hidden2 -> readout) on the same input
    net = s3gd.Network(4, 3, 2, threshold=threshold, sparse=sparse, seed=5, weight_scale=4.0, dtype=np.float64)
    z = net.forward(x)
    h1, h2 = net.hidden
    S2 = ref_lif_s3gd(ref_lif_s3gd(x, h1.params["weight"], h1.beta, threshold), h2.params["weight"], h2.beta,
                      threshold)
    np.testing.assert_array_equal(net.spikes()[1], S2)
    assert np.isfinite(z).all()


@PROFILE
@given(st.data())
def test_softmax_cross_entropy(data):
    B, C = data.draw(st.sampled_from([0, 1, 2, 3, 3])), data.draw(st.sampled_from([0, 1, 2, 3, 3]))
    z = data.draw(array((B, C), good=st.floats(-5, 5), p_bad=0.1, dtypes=[np.float64]))
    labels = data.draw(labels_for(B, C))
    loss = data.draw(st.sampled_from([nn.SoftmaxCrossEntropy(), stbp.CrossEntropy()]))
    res = outcome(lambda: loss(z, labels), ("labels", "logits"))
    if res is None:
        return
    value, grad = res
    y = np.asarray(labels)
    if not np.isfinite(z).all():                     # non-finite logits: a non-finite loss, which the Trainer
        assert not np.isfinite(value)                # diagnoses (it names the layer that made them)
        return
    from scipy.special import log_softmax
    ref = -log_softmax(z, axis=1)[np.arange(B), y].mean()
    assert value == pytest.approx(ref, rel=1e-12)
    g = np.exp(log_softmax(z, axis=1))
    g[np.arange(B), y] -= 1
    np.testing.assert_allclose(grad, g / B, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- STBP
STBP_NAMES = ("x", "v_th", "decay", "half_width", "shape", "channels", "features", "Conv2d", "TDBatchNorm", "BatchNorm",
              "DirectInput", "AvgPool2d", "GlobalAvgPool", "Readout", "Linear", "eps", "padding", "in_shape")


@PROFILE
@given(st.data())
def test_stbp_lif_and_tdbn(data):
    x = data.draw(array(shape_around([data.draw(st.integers(0, 3)), None, 3], p_rank=0.2),
                        good=st.floats(-1, 2), dtypes=[np.float64, np.float32, np.int64]))
    v_th, eps = data.draw(scalar([0.4, 1.0], p_odd=0.2)), data.draw(scalar([1e-5], p_odd=0.2))
    o = outcome(lambda: stbp.LIF(stbp.LIFParameters(v_th=v_th)).forward(x), STBP_NAMES)
    if o is not None:
        assert np.isfinite(x).all(), "a spiking layer must refuse NaN/Inf input (it would mean 'no spike')"
        np.testing.assert_array_equal(o, ref_lif_stbp(x.astype(np.float64), 0.25, v_th))
    bn = outcome(lambda: stbp.TDBatchNorm(3, v_th=0.4, eps=eps, dtype=np.float64), STBP_NAMES)
    if bn is None:
        return
    y = outcome(lambda: bn.forward(x), STBP_NAMES)
    if y is None:
        return
    if not np.isfinite(x).all():
        assert not np.isfinite(y).all(), "NaN/Inf input must stay visible in the output"
        return
    x2 = x.reshape(-1, 3).astype(np.float64)
    ref = (x2 - x2.mean(0)) / np.sqrt(x2.var(0) + eps) * 0.4
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.reshape(-1, 3), ref, rtol=1e-4, atol=1e-5)


@PROFILE
@given(st.data())
def test_stbp_conv_linear_pools(data):
    x = data.draw(array(shape_around([1, None, data.draw(st.sampled_from([4, 3, 2])), 4, 2], lo=0, hi=2),
                        good=st.floats(-1, 1), p_bad=0.1, dtypes=[np.float64, np.float64, np.int64]))
    padding = data.draw(scalar([0, 1], odd=[-1, 1.5]))
    conv = outcome(lambda: stbp.Conv2d(2, 3, 3, 1, padding=padding, seed=5, dtype=np.float64, in_shape=(4, 4)),
                   STBP_NAMES)
    if conv is not None:
        y = outcome(lambda: conv.forward(x), STBP_NAMES)
        if y is not None and not np.isfinite(x).all():
            assert not np.isfinite(y).all(), "NaN/Inf input must stay visible in the output"
        elif y is not None:
            p = conv.padding
            xp_ = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p), (0, 0)))
            Ho = 4 + 2 * p - 2
            ref = np.zeros(x.shape[:2] + (Ho, Ho, 3))
            for i in range(Ho):
                for j in range(Ho):
                    ref[:, :, i, j] = np.einsum("tnijc,oijc->tno", xp_[:, :, i:i + 3, j:j + 3], conv.params["weight"])
            np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    def pool_ref(a):
        T, B, H, W, C = a.shape
        return a.reshape(T, B, H // 2, 2, W // 2, 2, C).mean((3, 5))
    for layer, ref in ((stbp.AvgPool2d(2), pool_ref),
                       (stbp.GlobalAvgPool(), lambda a: a.mean((2, 3))),
                       (stbp.Readout(), lambda a: a.mean(0))):
        y = outcome(lambda: layer.forward(x), STBP_NAMES)
        if y is not None and not np.isfinite(x).all():
            assert not np.isfinite(y).all(), "NaN/Inf input must stay visible in the output"
        elif y is not None:
            np.testing.assert_allclose(y, ref(x), rtol=1e-12)
    lin = stbp.Linear(2, 3, seed=6, dtype=np.float64)
    y = outcome(lambda: lin.forward(x), STBP_NAMES)
    if y is not None and not np.isfinite(x).all():
        assert not np.isfinite(y).all(), "NaN/Inf input must stay visible in the output"
    elif y is not None:
        np.testing.assert_allclose(y, x @ lin.params["weight"].T + lin.params["bias"], rtol=1e-12)


@PROFILE
@given(st.data())
def test_stbp_direct_input(data):
    shape = data.draw(st.sampled_from([(2, 3, 4, 4), (2, 4, 4, 3), (2, 48), (0, 48), (2, 47), (2, 4, 4), (48,)]))
    x = data.draw(array(shape, good=st.floats(0, 1), p_bad=0.1, dtypes=[np.float32, np.float64, np.complex128]))
    y = outcome(lambda: stbp.DirectInput(2, (4, 4, 3)).forward(x), STBP_NAMES)
    if y is None:
        return
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[1], x.reshape(x.shape[0], 4, 4, 3).astype(np.float32))


# ---------------------------------------------------------------- encoders and data sets
ENC_NAMES = ("x", "t_max", "n_steps", "tau", "threshold", "max_prob", "dtype")


@PROFILE
@given(st.data())
def test_encoders(data):
    x = data.draw(array(shape_around([None, 3], p_rank=0.2), good=st.floats(0, 1), p_bad=0.2))
    which = data.draw(st.sampled_from(["latency", "log_latency", "poisson", "direct"]))
    n_steps = data.draw(scalar([5, 1], odd=[0, -1, 2.5]))
    if which == "latency":
        t_max = data.draw(scalar([0.1], p_odd=0.3))
        s = outcome(lambda: datasets.latency(x, t_max=t_max), ENC_NAMES)
        if s is not None:
            xf = flat(x)
            ref = np.where(xf > 0, t_max * (1 - xf), np.inf)
            np.testing.assert_allclose(s.times[:, :, 0], ref, rtol=1e-6)
            assert (s.counts == np.isfinite(ref)).all()
    elif which == "log_latency":
        s = outcome(lambda: datasets.log_latency(x, n_steps=n_steps), ENC_NAMES)
        if s is not None:
            xf = flat(x)
            ref = np.zeros((len(xf), n_steps, xf.shape[1]))
            for b, i in zip(*np.nonzero(xf > 0.2)):
                k = int(20.0 * math.log(xf[b, i] / (xf[b, i] - 0.2)))
                if k < n_steps:
                    ref[b, k, i] = 1
            np.testing.assert_array_equal(s, ref)
    elif which == "poisson":
        s = outcome(lambda: datasets.poisson(x, n_steps=n_steps, rng=np.random.default_rng(1)), ENC_NAMES)
        if s is not None:
            xf = flat(x)
            ref = np.random.default_rng(1).random((len(xf), n_steps, xf.shape[1])) < xf[:, None, :]
            np.testing.assert_array_equal(s, ref)
    else:
        s = outcome(lambda: datasets.direct(x, n_steps=n_steps), ENC_NAMES)
        if s is not None:
            assert np.isfinite(s).all()
            np.testing.assert_array_equal(s, np.repeat(x[:, None].astype(np.float32), n_steps, axis=1))


@FEW
@given(st.sampled_from(["digits", "yinyang", "Digits", "mnist", "nope", 3, None]),
       st.sampled_from(["train", "test", "validation", "TRAIN", "", 0]),
       st.sampled_from([{}, {}, {"limit": 3}, {"stand_in": True, "limit": 2}, {"n_steps": 0}, {"dt": 0}]))
def test_datasets_load(name, split, kw):
    # the downloaded sets are tried on their stand-in only (no network in the tests)
    if name == "mnist" and not kw.get("stand_in"):
        kw = {**kw, "stand_in": True}
    d = outcome(lambda: datasets.load(name, split, **kw), ("name", "split", "limit", "n_steps", "dt", "options",
                                                          "stand_in", "data set", "argument"))
    if d is None:
        return
    x = np.asarray(d.x)
    assert len(x) == len(d.y) > 0 and np.isfinite(x).all() and ((0 <= x) & (x <= 1)).all()
    assert d.y.dtype.kind == "i" and 0 <= d.y.min() and d.y.max() < d.n_classes
    again = datasets.load(name, split, **kw)
    np.testing.assert_array_equal(np.asarray(again.x), x)
