"""The S3GD backward replayed as a CUDA graph (snnkit/s3gd/graph.py) against the eager backward
and NumPy: the same gradients and active sets every step, a new capture exactly when an input
moved or a scalar changed, in-place updates seen by the replay, overflow redone, and no replay
where a layer is watched or timed."""
import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _nets(cp, sparse=True, readout="sum", dtype=np.float64, seed=5):
    """A NumPy network, an eager GPU one and a graphed GPU one with the same weights."""
    from snnkit.s3gd import Network
    kw = dict(beta_out=0.85, delta=0.2, sparse=sparse, readout=readout, seed=seed, dtype=dtype,
              weight_scale=4.0)
    g, e, c = Network(20, 16, 4, 0.9, cuda_graph=True, **kw), Network(20, 16, 4, 0.9, **kw), Network(20, 16, 4, 0.9, **kw)
    for lg, le, lc in zip(g.layers, e.layers, c.layers):
        le.params["weight"] = lg.params["weight"].copy()
        lc.params["weight"] = cp.asnumpy(lg.params["weight"])
        lc.grads["weight"] = np.zeros_like(lc.params["weight"])     # gradients are written in place
    return c, e, g


def _grads(net):
    return [np.array(l.grads["weight"].get() if hasattr(l.grads["weight"], "get") else l.grads["weight"])
            for l in net.layers]


def _backward(net, x, y, forward=True):
    if forward:
        net._loss_grad = net.loss()(net.forward(x), y)[1]
    for h in net.hidden:
        h.compaction.forget()
    net.backward(net._loss_grad)
    return _grads(net)


def _same_sets(ne, ng, msg):
    for he, hg in zip(ne.hidden, ng.hidden):
        Ae, Ag = he.compaction.active, hg.compaction.active
        assert not Ag.pending and not Ag.overflowed and Ag.n == Ae.n, msg
        for f in ("offsets", "b", "t", "j", "v"):
            np.testing.assert_array_equal(cp_get(getattr(Ag, f)), cp_get(getattr(Ae, f)), err_msg=f"{msg} {f}")


def cp_get(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("readout", ["max", "sum"])
def test_graph_replay_equals_eager_and_numpy_over_steps_and_overflow(cp, readout, dtype):
    """Steps of rising and falling activity, a forced overflow, and repeated backwards on one
    forward: the graphed network's gradients and sets equal the eager GPU network's exactly and
    NumPy's to round-off; the second backward on one forward is a capture and replay, the third a
    replay."""
    nc, ne, ng = _nets(cp, readout=readout, dtype=dtype)
    r = np.random.default_rng(9)
    replays = []
    for step, rate in enumerate([0.01, 0.01, 0.01, 0.05, 0.02, 0.15, 0.02]):
        x = (r.random((700, 25, 20)) < rate).astype(dtype)
        y = r.integers(0, 4, 700)
        if step == 4:                                  # an overflow on a quiet step as well
            for net in (ne, ng):
                for h in net.hidden:
                    h.compaction.capacities = {k: 3 for k in h.compaction.capacities}
        gc = _backward(nc, x, y)
        before = (ne.overflows, ng.graphs.replays)
        ge = _backward(ne, cp.asarray(x), cp.asarray(y))
        gg = _backward(ng, cp.asarray(x), cp.asarray(y))
        replays.append(ng.graphs.replays - before[1])
        assert ng.overflows == ne.overflows, f"step {step}"
        for a, b, c in zip(gg, ge, gc):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}: graph vs eager")
            if dtype == np.float64:     # float32 GEMMs differ from NumPy's, and so do band edges
                np.testing.assert_allclose(a, c, err_msg=f"step {step}: graph vs NumPy", rtol=1e-9, atol=1e-12)
        _same_sets(ne, ng, f"step {step}")
        n = ng.graphs.replays
        for k in range(3):       # the same forward again: seen (if not yet), captured, replayed
            again = _backward(ng, None, None, forward=False)
            for a, b in zip(again, ge):
                np.testing.assert_array_equal(a, b, err_msg=f"step {step}: backward {k + 2}")
            _same_sets(ne, ng, f"step {step}: backward {k + 2}")
        replays.append(ng.graphs.replays - n)
    assert replays[0] == 0 and min(replays[1::2]) >= 2, replays      # first step: an exact count
    assert ne.overflows >= 2                                        # step 4, and rising activity


def test_graph_keys_follow_inputs_and_scalars(cp):
    """A moved weight or a new delta is a new capture; an in-place weight update is a replay that
    reads the new values (the same gradients as the eager backward after the same update)."""
    nc, ne, ng = _nets(cp, readout="max")
    r = np.random.default_rng(3)
    x = cp.asarray((r.random((300, 25, 20)) < 0.03).astype(np.float64))
    y = cp.asarray(r.integers(0, 4, 300))

    def both(forward=True):
        a, b = _backward(ne, x, y, forward), _backward(ng, x, y, forward)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(v, u)
        return ng.graphs.captures
    both()                                                           # eager: the first count
    assert both(forward=False) == 0                                  # a key seen once: eager
    assert both(forward=False) == 1 and ng.graphs.replays == 1       # seen twice: captured
    assert both(forward=False) == 1 and ng.graphs.replays == 2
    for net in (ne, ng):                                             # in place: same pointer
        net.hidden[1].params["weight"] *= 1.3
    assert both(forward=False) == 1 and ng.graphs.replays == 3
    for net in (ne, ng):                                             # a new array: a new key
        net.hidden[0].params["weight"] = net.hidden[0].params["weight"] * 0.9
    assert both(forward=False) == 1 and ng.graphs.replays == 3
    assert both(forward=False) == 2 and ng.graphs.replays == 4
    for net in (ne, ng):                                             # a new scalar: a new key
        net.delta = 0.1
    assert both(forward=False) == 2
    assert both(forward=False) == 3
    assert both(forward=False) == 3 and ng.graphs.replays == 6


def test_graph_training_steps_and_dense_mode_stays_eager(cp):
    """Eight Adam steps (each on the last of three backwards of its forward, so that the graphed
    network replays) give the eager network's weights exactly; a dense network never replays (its
    GEMMs are cuBLAS, which CuPy does not capture) and still trains the same."""
    from snnkit.nn import Adam
    for sparse in (True, False):
        _, ne, ng = _nets(cp, sparse=sparse, readout="max")
        opts = [Adam(ne, lr=1e-2), Adam(ng, lr=1e-2)]
        r = np.random.default_rng(4)
        for step in range(8):
            x = cp.asarray((r.random((200, 25, 20)) < 0.03).astype(np.float64))
            y = cp.asarray(r.integers(0, 4, 200))
            for net, opt in zip((ne, ng), opts):
                _backward(net, x, y)
                _backward(net, None, None, forward=False)
                _backward(net, None, None, forward=False)
                opt.step()
        for le, lg in zip(ne.layers, ng.layers):
            np.testing.assert_array_equal(cp.asnumpy(lg.params["weight"]), cp.asnumpy(le.params["weight"]))
        if sparse:
            assert ng.graphs.replays >= 8 and ng.graphs.workspace_bytes > 0, ng.graphs.replays
        else:
            assert ng.graphs.replays == ng.graphs.captures == 0


def test_training_loop_replays(cp):
    """With cuda_graph on, the forward writes into the same buffers every step and dL/dlogits is
    copied into one, so a training loop over fresh batches keeps its key: eager on the first step
    (exact count), seen on the second, captured on the third, replayed after (until a capacity
    grows); the weights equal the eager network's after every step."""
    from snnkit.nn import Adam
    _, ne, ng = _nets(cp, readout="sum", dtype=np.float32)
    opts = [Adam(ne, lr=1e-2), Adam(ng, lr=1e-2)]
    r = np.random.default_rng(6)
    for step in range(12):
        x = cp.asarray((r.random((300, 25, 20)) < 0.03).astype(np.float32))
        y = cp.asarray(r.integers(0, 4, 300))
        for net, opt in zip((ne, ng), opts):
            v, g = net.loss()(net.forward(x), y)
            net.backward(g)
            opt.step()
        for le, lg in zip(ne.layers, ng.layers):
            np.testing.assert_array_equal(cp.asnumpy(lg.params["weight"]), cp.asnumpy(le.params["weight"]),
                                          err_msg=f"step {step}")
    # a capacity that grows (a count above 2/3 of it) is a new key, seen, then captured: a few
    # steps more than the first three may run eagerly while the activity settles
    # (without the static buffers every step would be a new key: no replay at all)
    assert ng.graphs.replays >= 4 and ng.graphs.captures <= ng.graphs.replays, (ng.graphs.captures,
                                                                                  ng.graphs.replays)
    spikes = ng.spikes()[0]
    ng.forward(cp.zeros_like(x))                      # the documented price: outputs are overwritten
    assert float(spikes.sum()) == 0
    ng.cuda_graph = False
    spikes = ng.spikes()[0]
    ng.forward(x)
    assert float(spikes.sum()) == 0 and float(ng.spikes()[0].sum()) > 0


def test_no_replay_when_timed_or_watched(cp):
    """A timed backward, or one whose layer methods are wrapped on the instance (the trainer's
    NaN diagnosis does that), runs eagerly: every layer call happens."""
    _, ne, ng = _nets(cp)
    r = np.random.default_rng(1)
    x = cp.asarray((r.random((100, 25, 20)) < 0.03).astype(np.float64))
    y = cp.asarray(r.integers(0, 4, 100))
    _backward(ng, x, y)
    _backward(ng, x, y, forward=False)
    _backward(ng, x, y, forward=False)
    n = ng.graphs.replays
    assert n == 1
    seen = []
    from contextlib import contextmanager

    @contextmanager
    def timer(name):
        seen.append(name)
        yield
    for h in ng.hidden:
        h.compaction.forget()
    ng.backward(ng._loss_grad, timer=timer)
    assert ng.graphs.replays == n and "hidden1" in seen
    calls = []
    h1 = ng.hidden[0]
    inner = h1.backward
    h1.backward = lambda *a, **k: (calls.append(1), inner(*a, **k))[1]
    _backward(ng, None, None, forward=False)
    assert ng.graphs.replays == n and calls == [1]
    del h1.backward
    _backward(ng, None, None, forward=False)
    assert ng.graphs.replays == n + 1


def test_side_stream_adjoint_and_the_cheap_replay_key(cp):
    """The readout's e and the regularizer's terms, made on a side stream beside the compaction,
    reach the chain: replays give the eager network's gradients exactly (NumPy to round-off). The
    last replay's cheap key check (graph._Recent) answers the full fingerprint for the same inputs,
    and None once an input is reshaped in place (whose fingerprint is then another key)."""
    from snnkit.s3gd.graph import fingerprint, key_parts
    nc, ne, ng = _nets(cp, readout="sum", dtype=np.float64)
    r = np.random.default_rng(12)
    x = (r.random((400, 25, 20)) < 0.02).astype(np.float64)
    y = r.integers(0, 4, 400)
    gc = _backward(nc, x, y)
    ge = _backward(ne, cp.asarray(x), cp.asarray(y))
    for k in range(4):                                   # eager, seen, captured, replayed
        gg = _backward(ng, cp.asarray(x), cp.asarray(y), forward=k == 0)
        for a, b, c in zip(gg, ge, gc):
            np.testing.assert_array_equal(a, b, err_msg=f"backward {k}")
            np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-12, err_msg=f"backward {k}: vs NumPy")
        _same_sets(ne, ng, f"backward {k}")
    assert ng.graphs.captures == 1 and ng.graphs.replays == 2
    g = ng._loss_grad
    static = ng.static_outputs.get("grad_logits", g.shape, g)
    recent, key = ng.graphs.recent, fingerprint(ng, static)
    assert recent.key_if_same(*key_parts(ng, static)) == key and key in ng.graphs.graphs
    W = ng.readout.grads["weight"]
    W.shape = W.shape[::-1]                              # in place: the same object
    assert recent.key_if_same(*key_parts(ng, static)) is None and fingerprint(ng, static) != key
    W.shape = W.shape[::-1]
    assert recent.key_if_same(*key_parts(ng, static)) == key
    again = _backward(ng, None, None, forward=False)
    assert ng.graphs.replays == 3
    for a, b in zip(again, ge):
        np.testing.assert_array_equal(a, b)
