"""S3GD on the CPU: forward equations, dense BPTT against a plainly unrolled BPTT, sparse backward
against the dense backward with the band-truncated surrogate, finite differences in smooth mode,
the regularizer, the instruments and the dead-network guard."""
import warnings

import numpy as np
import pytest

from snnkit import s3gd
from snnkit.nn import SoftmaxCrossEntropy
from snnkit.s3gd import ActivityRegularizer, LeakyReadout, LIFDense, Network
from gradcheck import fd_check, numerical_gradient

pytestmark = pytest.mark.usefixtures("numpy_backend")

BETA, BETA_R = 0.85, 0.8


def _net(seed, delta=0.2, readout="max", n_in=6, n=8, c=3, sparse=True, dtype=np.float64,
         reg=None):
    net = Network(n_in, n, c, BETA, beta_out=BETA_R, delta=delta, sparse=sparse, readout=readout,
                  regularizer=reg or ActivityRegularizer(lambda_up=0.5, f_up=0.05, lambda_low=3.0, f_low=0.6),
                  seed=seed, dtype=dtype)
    r = np.random.default_rng(seed)
    # weights with a positive mean so that both layers fire and sit near threshold
    net.hidden[0].params["weight"][...] = r.normal(0.35, 0.6, (n_in, n))
    net.hidden[1].params["weight"][...] = r.normal(0.3, 0.6, (n, n))
    net.readout.params["weight"][...] = r.normal(0.0, 1.0, (n, c))
    return net


def _data(seed, B=3, T=12, n_in=6, c=3, p=0.35):
    r = np.random.default_rng(seed + 100)
    return (r.random((B, T, n_in)) < p).astype(np.float64), r.integers(0, c, B)


def _grads(net, x, y):
    loss = net.loss()
    logits = net.forward(x)
    _, g = loss(logits, y)
    net.backward(g)
    return [l.grads["weight"].copy() for l in net.layers]


# -- forward ---------------------------------------------------------------------------------------
def test_forward_follows_the_equations():
    r = np.random.default_rng(0)
    h = r.normal(0.4, 0.7, (2, 30, 5))
    V, S = s3gd.lif_simulate(h, BETA, threshold=1.0)
    v, s = np.zeros((2, 5)), np.zeros((2, 5))
    for t in range(30):
        v = BETA * v + h[:, t] - s
        s = (v >= 1.0).astype(float)
        np.testing.assert_array_equal(V[:, t], v)
        np.testing.assert_array_equal(S[:, t], s)
    assert 0 < S.mean() < 1


def test_single_neuron_closed_form():
    # constant input current I: V[t] = I (1 - beta^(t+1)) / (1 - beta) until the first spike
    I, T = 0.2, 40
    V, S = s3gd.lif_simulate(np.full((1, T, 1), I), BETA)
    t_first = int(np.argmax(S[0, :, 0]))
    expect = I * (1 - BETA ** (np.arange(t_first + 1) + 1)) / (1 - BETA)
    np.testing.assert_allclose(V[0, :t_first + 1, 0], expect, rtol=1e-12)
    assert expect[t_first] >= 1 > expect[t_first - 1]


def test_scan_is_the_adjoint_of_itself():
    r = np.random.default_rng(1)
    x, gy = r.normal(size=(2, 9, 3)), r.normal(size=(2, 9, 3))
    y = s3gd.scan_forward(x, 0.7, 0.3)
    gx = s3gd.scan_backward(gy, 0.7, 0.3)
    assert np.isclose((y * gy).sum(), (x * gx).sum(), rtol=1e-12)


# -- dense backward vs a plainly unrolled BPTT ------------------------------------------------------
def _unrolled_bptt(x, Ws, y, readout, reg, scale=100.0):
    """Independent reference: explicit per-sample loops, the double sum over t' >= t written out."""
    W1, W2, W3 = Ws
    B, T, _ = x.shape
    acts = []
    inp = x
    for W in (W1, W2):
        N = W.shape[1]
        V, S = np.zeros((B, T, N)), np.zeros((B, T, N))
        for b in range(B):
            v, s = np.zeros(N), np.zeros(N)
            for t in range(T):
                v = BETA * v + inp[b, t] @ W - s
                s = (v >= 1.0) * 1.0
                V[b, t], S[b, t] = v, s
        acts.append((inp, V, S))
        inp = S
    S2 = acts[1][2]
    C = W3.shape[1]
    out = np.zeros((B, T, C))
    for b in range(B):
        o = np.zeros(C)
        for t in range(T):
            o = BETA_R * o + (1 - BETA_R) * (S2[b, t] @ W3)
            out[b, t] = o
    logits = out.max(axis=1) if readout == "max" else out.sum(axis=1)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = (p - np.eye(C)[y]) / B
    dout = np.zeros_like(out)
    for b in range(B):
        for c in range(C):
            if readout == "max":
                dout[b, int(np.argmax(out[b, :, c])), c] = dlogits[b, c]
            else:
                dout[b, :, c] = dlogits[b, c]
    dz = np.zeros_like(out)
    for b in range(B):
        for t in range(T):
            dz[b, t] = (1 - BETA_R) * sum(BETA_R ** (u - t) * dout[b, u] for u in range(t, T))
    grads = [None, None, sum(np.outer(S2[b, t], dz[b, t]) for b in range(B) for t in range(T))]
    dS = np.einsum("btc,jc->btj", dz, W3)
    for layer in (1, 0):
        inp, V, S = acts[layer]
        N = V.shape[2]
        cnt = S.sum(axis=1)
        up = reg.lambda_up / (B * N) * (cnt.sum(1, keepdims=True) / N > reg.f_up)
        low = -2 * reg.lambda_low / (B * N) * np.maximum(reg.f_low - cnt, 0)
        dS = dS + (up + low)[:, None, :]
        sg = 1.0 / (scale * np.abs(V - 1.0) + 1.0) ** 2
        dV = np.zeros_like(V)
        for b in range(B):
            for t in range(T):
                dV[b, t] = sum(BETA ** (u - t) * dS[b, u] * sg[b, u] for u in range(t, T))
        grads[layer] = sum(np.outer(inp[b, t], dV[b, t]) for b in range(B) for t in range(T))
        dS = np.einsum("btj,ij->bti", dV, (W1, W2)[layer])
    return grads


@pytest.mark.parametrize("readout", ["max", "sum"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_backward_equals_unrolled_bptt(seed, readout):
    net = _net(seed, readout=readout, sparse=False)
    x, y = _data(seed)
    got = _grads(net, x, y)
    assert all(h.mean() > 0.02 for h in net.spikes()), "test network should be active"
    ref = _unrolled_bptt(x, [l.params["weight"] for l in net.layers], y, readout, net.regularizer)
    for name, g, r in zip(("W1", "W2", "W3"), got, ref):
        assert np.abs(r).max() > 0, name
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-13, err_msg=name)


# -- sparse backward vs dense backward with the truncated surrogate -----------------------------------
@pytest.mark.parametrize("delta", [1e-12, 0.05, 0.2, 0.5, 1e9])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sparse_equals_truncated_dense(seed, delta):
    x, y = _data(seed, B=4, T=15)
    sp = _net(seed, delta=delta, sparse=True)
    de = _net(seed, delta=delta, sparse=False)
    for h in de.hidden:
        h.truncate = True
    gs, gd = _grads(sp, x, y), _grads(de, x, y)
    frac = [h.active_set().fraction for h in sp.hidden]
    if delta == 1e-12:
        assert frac == [0.0, 0.0]                      # empty active sets: zero hidden gradients
        assert not gs[0].any() and not gs[1].any()
    if delta == 1e9:
        assert frac == [1.0, 1.0]                      # full active sets: plain dense BPTT
    for name, a, b in zip(("W1", "W2", "W3"), gs, gd):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14, err_msg=f"{name} delta={delta}")


def test_full_band_sparse_equals_untruncated_dense():
    x, y = _data(5)
    gs = _grads(_net(5, delta=1e9, sparse=True), x, y)
    gd = _grads(_net(5, delta=1e9, sparse=False), x, y)
    for a, b in zip(gs, gd):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("delta", [0.1, 0.4, 1e9])
def test_layer_sparse_dense_input_gradient(delta):
    """Standalone layer: sparse backward with at=None gives the full dL/dS_in of the truncated model."""
    r = np.random.default_rng(7)
    x = (r.random((3, 10, 5)) < 0.4).astype(np.float64)
    gy = r.normal(size=(3, 10, 4))
    ls = LIFDense(5, 4, BETA, delta=delta, sparse=True, dtype=np.float64, weight_scale=3.0, seed=1)
    ld = LIFDense(5, 4, BETA, delta=delta, sparse=False, truncate=True, dtype=np.float64,
                  weight_scale=3.0, seed=1)
    ls.forward(x), ld.forward(x)
    np.testing.assert_allclose(ls.backward(gy), ld.backward(gy), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(ls.grads["weight"], ld.grads["weight"], rtol=1e-11, atol=1e-14)
    assert ls.backward(gy, need_input_grad=False) is None


# -- smooth mode: finite differences through time ----------------------------------------------------
def test_smooth_mode_passes_finite_differences():
    k = 4.0
    reg = ActivityRegularizer(lambda_up=0.3, f_up=0.2, lambda_low=2.0, f_low=2.5)
    l1 = LIFDense(5, 6, BETA, sparse=False, smooth=k, dtype=np.float64, weight_scale=2.5, seed=3)
    l2 = LIFDense(6, 4, BETA, sparse=False, smooth=k, dtype=np.float64, weight_scale=2.5, seed=4)
    ro = LeakyReadout(4, 3, BETA_R, mode="sum", dtype=np.float64, weight_scale=2.0, seed=5)
    ce = SoftmaxCrossEntropy()
    r = np.random.default_rng(11)
    x = (r.random((2, 14, 5)) < 0.5).astype(np.float64)
    y = np.array([0, 2])

    def run(resets=None):
        s1 = l1.forward(x, reset_from=None if resets is None else resets[0])
        s2 = l2.forward(s1, reset_from=None if resets is None else resets[1])
        value, g = ce(ro.forward(s2), y)
        return value + reg.value(s1) + reg.value(s2), g, (s1.copy(), s2.copy())

    _, g, frozen = run()
    s1, s2 = frozen
    gs2 = ro.backward(g)
    gs1 = l2.backward(gs2, grad_const=reg.grad(s2))
    l1.backward(gs1, need_input_grad=False, grad_const=reg.grad(s1))
    for layer in (l1, l2, ro):
        W = layer.params["weight"]
        analytic = layer.grads["weight"].copy()
        fd = numerical_gradient(lambda: run(frozen)[0], W)
        rel = np.linalg.norm(fd - analytic) / np.linalg.norm(fd)
        assert np.linalg.norm(fd) > 1e-4
        assert rel <= 1e-5, f"{layer.name}: relative error {rel:.2e}"
        np.testing.assert_allclose(analytic, fd, rtol=1e-4, atol=1e-8)


# -- regularizer ------------------------------------------------------------------------------------
def test_regularizer_gradient_matches_finite_differences():
    reg = ActivityRegularizer(lambda_up=0.3, f_up=0.5, lambda_low=2.0, f_low=1.5)
    r = np.random.default_rng(2)
    S = r.random((3, 6, 4)) * 0.4
    g = reg.grad(S)                              # dL/dS[b, t, j] is the same for every t
    fd_check(lambda: reg.value(S), [S], [np.broadcast_to(g[:, None, :], S.shape)], rtol=1e-6, atol=1e-10,
             entries=[[(0, 0, 0), (1, 3, 2), (2, 5, 3)]])


# -- active set and instruments ---------------------------------------------------------------------
def test_active_set_layout_and_fraction():
    r = np.random.default_rng(3)
    V = r.normal(1.0, 0.5, (3, 7, 4))
    A = s3gd.active_set(V, 1.0, 0.2)
    mask = np.abs(V - 1.0) < 0.2
    assert A.n == mask.sum() and np.isclose(A.fraction, mask.mean())
    np.testing.assert_allclose(A.per_step(), mask.mean(axis=(0, 2)))
    np.testing.assert_array_equal(A.scatter(A.gather(V)), np.where(mask, V, 0))
    for bj in range(3 * 4):                            # CSR over (b, j), time ascending
        seg = slice(A.offsets[bj], A.offsets[bj + 1])
        assert np.all(A.b[seg] == bj // 4) and np.all(A.j[seg] == bj % 4)
        assert np.all(np.diff(A.t[seg]) > 0)
    with pytest.raises(ValueError, match="delta"):
        s3gd.active_set(V, 1.0, 0.0)


def test_gradient_cosine_and_profile():
    x, y = _data(4, B=4, T=15)
    net = _net(4, delta=1e9)
    cos, dense, sparse = s3gd.gradient_cosine(net, x, y)
    assert set(cos) == {"hidden1", "hidden2", "readout"}
    assert all(c > 1 - 1e-12 for c in cos.values())    # full band: identical gradients
    net.delta = 0.05
    cos, _, _ = s3gd.gradient_cosine(net, x, y)
    assert cos["readout"] > 1 - 1e-12 and cos["hidden1"] < 1 - 1e-6
    prof = s3gd.backward_profile(net, x, y, repeats=2)
    assert set(prof) == {"dense", "sparse"}
    assert set(prof["sparse"]["layers_ms"]) == {"compact", "readout", "hidden1", "hidden2"}
    assert prof["dense"]["memory_bytes"] > 0 and prof["sparse"]["total_ms"] > 0
    assert set(prof["dense"]["layers_bytes"]) == {"readout", "hidden1", "hidden2"}
    assert prof["dense"]["layers_bytes"]["hidden2"] > 0
    fr = s3gd.active_fractions(net)
    assert fr["hidden1"][1].shape == (15,)


# -- validation and the dead-network guard ----------------------------------------------------------
def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="delta"):
        LIFDense(3, 2, BETA, delta=0)
    with pytest.raises(ValueError, match="beta"):
        LIFDense(3, 2, 1.5)
    with pytest.raises(ValueError, match="smooth"):
        LIFDense(3, 2, BETA, smooth=3.0, sparse=True)
    with pytest.raises(ValueError, match="mode"):
        LeakyReadout(3, 2, mode="mean")
    layer = LIFDense(3, 2, BETA)
    with pytest.raises(ValueError, match=r"\[batch, time, 3\]"):
        layer.forward(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 5, 2), np.float32))


def test_dead_network_guard_warns_with_layer_name():
    net = Network(6, 8, 3, BETA, delta=0.05, weight_scale=1e-3, seed=0,
                  guard=s3gd.DeadLayerGuard(patience=3))
    x, y = _data(0, B=4)
    loss = net.loss()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for _ in range(3):
            _, g = loss(net.forward(x.astype(np.float32)), y)
            net.backward(g)
    msgs = [str(w.message) for w in rec if issubclass(w.category, s3gd.DeadNetworkWarning)]
    assert len(msgs) == 2 and "'hidden1'" in msgs[0] and "active fraction 0" in msgs[0]
    assert not net.hidden[0].grads["weight"].any()     # the gradient really is zero


def test_memory_ledger_per_step_peaks():
    from snnkit.s3gd.instruments import Ledger
    led = Ledger()
    led.malloc(1, 100)                                # before any step
    led.begin("a")
    led.malloc(2, 50)
    led.malloc(3, 30)
    led.free(2)
    led.end()
    led.begin("b")
    led.malloc(4, 10)
    led.free(999)                                     # allocated before the measurement: ignored
    led.end()
    assert led.peak == 180 and led.cur == 140
    assert led.label_peak == {"a": 80, "b": 10}


def test_peak_memory_per_step_on_cpu():
    with s3gd.PeakMemory(on_gpu=False) as m:
        with m.step("big"):
            a = np.ones(1_000_000)
            del a
        with m.step("small"):
            b = np.ones(10_000)
    assert m.step_bytes["big"] >= 8_000_000 > m.step_bytes["small"] >= 80_000
    assert m.peak_bytes >= 8_000_000
    del b


def test_recorded_benchmark_reads_the_newest_run_only(tmp_path):
    from snnkit.viz.s3gd import recorded_benchmark
    f = tmp_path / "RESULTS.md"
    f.write_text("# Benchmarks\n\n## S3GD\n\n### new run\n\n| config | path | f | b | m |\n|---|---|---|---|---|\n"
                 "| shd | ours sparse | 2.5 | **0.86** | 34 |\n| shd | ours sparse + graph | 2.5 | 0.54 | 28 |\n"
                 "| shd | PyTorch dense | 105 | 164 | 196 |\n\n"
                 "### old run\n\n| shd | ours sparse | 3.0 | 2.6 | 27 |\n\n## Other\n\n| shd | ours sparse | 9 | 9 | 9 |\n")
    rows = recorded_benchmark(f)
    assert [(r["label"], r["backward_ms"]) for r in rows] == [("ours sparse", 0.86), ("ours sparse + graph", 0.54),
                                                              ("PyTorch dense", 164.0)]
    assert recorded_benchmark(tmp_path / "missing.md") == []


# -- the layer protocol and the parameter object ------------------------------------------------------
@pytest.mark.parametrize("sparse", [True, False])
def test_grads_written_in_place_and_need_input_grad(sparse):
    net = _net(2, sparse=sparse)
    x, y = _data(2)
    held = {k: v for k, v in net.grads.items()}
    assert net.grads.keys() == net.params.keys() == {"hidden1.weight", "hidden2.weight", "readout.weight"}
    _, g = net.loss()(net.forward(x), y)
    assert net.backward(g) is None                      # the network's input is data: no gradient
    assert all(net.grads[k] is held[k] for k in held) and all(np.abs(v).max() > 0 for v in held.values())
    first = {k: v.copy() for k, v in held.items()}
    gx = net.backward(g, need_input_grad=True)
    assert gx.shape == x.shape and np.abs(gx).max() > 0
    for k in held:                                      # the same gradients, into the same arrays
        assert net.grads[k] is held[k]
        np.testing.assert_allclose(held[k], first[k], rtol=1e-12, atol=1e-15)
    h = net.hidden[0]
    assert h.backward(np.ones(h.V.shape), need_input_grad=False) is None
    assert h.backward(np.ones(h.V.shape)).shape == x.shape


def test_lif_parameters_one_object():
    p = s3gd.LIFParameters(beta=0.9, delta=0.1)
    layer = LIFDense(3, 2, neuron=p)
    assert layer.neuron is p and (layer.beta, layer.delta, layer.threshold, layer.scale) == (0.9, 0.1, 1.0, 100.0)
    assert LIFDense(3, 2, 0.9, delta=0.1).neuron == p
    with pytest.raises(ValueError, match="not both"):
        LIFDense(3, 2, 0.9, neuron=p)
    with pytest.raises(ValueError, match="delta"):
        p.replace(delta=-1)
    net = Network(3, 4, 2, neuron=p)
    assert all(h.neuron is p for h in net.hidden) and net.readout.beta == 0.9
    net.delta = 0.3
    assert net.neuron == p.replace(delta=0.3) and p.delta == 0.1          # frozen: replaced, not changed
    assert s3gd.LeakyReadout(3, 2).beta == s3gd.BETA == pytest.approx(np.exp(-1 / 10))


def test_loss_value_and_grad_include_the_regularizer_as_call_does():
    # the Trainer's device path calls value_and_grad, the host path __call__: both must report
    # NLL + the regularizer's value (a value_and_grad inherited from SoftmaxCrossEntropy did not)
    rng = np.random.default_rng(3)
    net = Network(12, 8, 3, sparse=False, seed=0, weight_scale=7.0, readout_scale=5.0,
                  regularizer=ActivityRegularizer(f_up=0.01))
    x = (rng.random((4, 15, 12)) < 0.3).astype(np.float64)
    y = np.array([0, 1, 2, 0])
    out = net.forward(x)
    loss = net.loss()
    assert float(net.reg_value) > 1e-3          # far above float32 rounding of the NLL
    v_call, g_call = loss(out, y)
    v, g = loss.value_and_grad(out, y)
    nll, g_nll = SoftmaxCrossEntropy()(out, y)
    assert float(v) == v_call == pytest.approx(nll + float(net.reg_value), rel=1e-6)   # float32 sum
    np.testing.assert_array_equal(g, g_call)
    np.testing.assert_array_equal(g, g_nll)


def test_recent_graph_key_is_exact():
    """graph._Recent, the cheap check that the last replay's key still holds: it answers that key
    only for the same array objects with the same shapes and strides and equal scalars; an array
    reshaped in place, another array with equal contents, a changed scalar or a dead array all
    make it answer None (then the full fingerprint is computed)."""
    from snnkit.s3gd.graph import _Recent
    a, b = np.zeros((4, 6)), np.ones(5)
    scalars = ((("neuron", 10),), (0.9, "sum"), (1.0, 2.0, 3.0, 4.0))
    r = _Recent([a, None, b], scalars, key="k")
    assert r.key_if_same([a, None, b], scalars) == "k"
    assert r.key_if_same([a, None, b], tuple(scalars)) == "k"         # equal, not identical
    assert r.key_if_same([a, None, b.copy()], scalars) is None
    assert r.key_if_same([a, b, b], scalars) is None
    assert r.key_if_same([a, None], scalars) is None
    assert r.key_if_same([a, None, b], scalars[:-1] + ((1.0, 2.0, 3.0, 5.0),)) is None
    a.shape = (6, 4)                                                    # in place: same object
    assert r.key_if_same([a, None, b], scalars) is None
    a.shape = (4, 6)
    assert r.key_if_same([a, None, b], scalars) == "k"
    t = a[:2]                                                           # same shape, other strides
    r2 = _Recent([t], scalars, key="t")
    t.strides = (0, 8)
    assert r2.key_if_same([t], scalars) is None
    del t
    import gc
    gc.collect()
    assert r2.refs[0]() is None and r2.key_if_same([a[:2]], scalars) is None
