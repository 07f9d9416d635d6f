"""Time discretization through conv / pool / dense BATS networks: grid times, the one-step refractory
period, continuous times kept, convergence to the continuous network as dt -> 0, the network builder,
and (slow) the digits sweep: small dt matches continuous accuracy, large dt falls off."""
import numpy as np
import pytest

from snnkit import datasets
from snnkit.bats.layers import latency_encoder
from snnkit.bats.losses import TTFSCrossEntropy
from snnkit.bats.study import build_network, continuous_times, falloff_dt, set_dt, sweep
from snnkit.nn import Adam, Trainer
from snnkit.spikes import SpikeTrains

pytestmark = pytest.mark.usefixtures("numpy_backend")
SPEC = dict(spec="4C3-P2-12-10", input_shape=(8, 8, 1), theta=[0.05, 0.1, 0.3], max_spikes=[2, 3, 5],
            tau_s=0.13, t_max=0.2, init=(-0.3, 1.0), dtype=np.float64)


def _digits(n=40):
    x, y = datasets.load("digits", "test")
    return latency_encoder(0.1, dtype=np.float64)(x[:n]), y[:n]


def _spiking(net):
    return [l for l in net.layers if hasattr(l, "tau_s")]


@pytest.mark.parametrize("dt", [0.002, 0.01])
def test_grid_times_refractory_and_continuous_kept(dt):
    net = build_network(dt=dt, **SPEC)
    x, _ = _digits()
    net.forward(x)
    for layer in _spiking(net):
        s = layer.last
        fin = np.isfinite(s.times)
        assert fin.sum() > 0
        k = s.times[fin] / dt
        assert np.all(np.abs(k - np.round(k)) < 1e-6), "reported times lie on the grid"
        shift = s.times[fin] - s.t_cont[fin]
        assert np.all((shift > 0) & (shift <= dt * (1 + 1e-9))), "ceil to the NEXT grid point"
        with np.errstate(invalid="ignore"):              # inf - inf between padding slots
            gaps = np.diff(s.times, axis=2)
        both = np.isfinite(gaps)
        assert np.all(gaps[both] >= dt * (1 - 1e-6)), "at most one spike per grid step"
        cont = continuous_times(layer)
        assert cont is not None and cont.times.shape[0] == x.times.shape[0]


def test_small_dt_converges_to_continuous():
    x, _ = _digits(20)
    ref = build_network(**SPEC)
    out_c = ref.forward(x)
    net = build_network(dt=1e-7, **SPEC)
    out_d = net.forward(x)
    same = out_c.counts == out_d.counts
    assert same.mean() > 0.99
    both = np.isfinite(out_c.times) & np.isfinite(out_d.times) & same[:, :, None]
    # each of the 3 spiking layers (and the input) adds at most one step of delay
    assert np.abs(out_d.times[both] - out_c.times[both]).max() < 1e-5


def test_set_dt_on_a_trained_network_matches_a_network_built_with_dt():
    x, _ = _digits(10)
    a = build_network(**SPEC)
    b = build_network(dt=0.005, **SPEC)
    set_dt(a, 0.005)
    oa, ob = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(oa.times, ob.times)
    set_dt(a, None)
    assert all(l.dt is None for l in _spiking(a))


def test_backward_runs_at_continuous_times():
    """With dt the gradient is the exact BATS gradient at the continuous times and used inputs: it is
    finite, nonzero, and reaches the conv kernel through the pooling layer."""
    x, y = _digits(16)
    net = build_network(dt=0.005, **SPEC)
    out = net.forward(x)
    loss = TTFSCrossEntropy(0.02)
    _, g = loss(out, y)
    net.backward(g)
    conv = net.layers[1]
    assert np.isfinite(conv.grads["weight"]).all() and np.abs(conv.grads["weight"]).max() > 0


def test_build_network_errors():
    with pytest.raises(ValueError, match="theta"):
        build_network("12-10", 64, [0.1], [3, 5], 0.13, 0.2)
    with pytest.raises(ValueError, match="conv layer needs"):
        build_network("4C3-10", 64, [0.1, 0.1], [1, 1], 0.13, 0.2)
    with pytest.raises(ValueError, match="P2"):
        build_network("4C3-P3-10", (8, 8, 1), [0.1, 0.1], [1, 1], 0.13, 0.2)
    with pytest.raises(ValueError, match="cannot read"):
        build_network("4x-10", 64, [0.1, 0.1], [1, 1], 0.13, 0.2)
    with pytest.raises(ValueError, match="even"):
        build_network("4C2-P2-10", (8, 8, 1), [0.1, 0.1], [1, 1], 0.13, 0.2)


def test_evaluate_counts_samples_with_a_silent_output():
    """A silent output layer predicts nothing (-1), which counts as wrong: evaluate reports the share of
    such samples, accuracy <= 1 - that share, and a network silent on every sample scores 0 (below
    chance) with share 1. The same weights on a fine grid answer again."""
    from snnkit.bats.study import evaluate
    x, y = datasets.load("digits", "test")
    x, y = x[:60], y[:60]
    loss = TTFSCrossEntropy(0.02)
    net = build_network(seed=1, **NB)
    for dt, silent in ((0.1, 1.0), (0.001, None)):       # 100 ms: the hidden layer reports at t_max at the earliest
        set_dt(net, dt)
        summary, _, _ = evaluate(net, x, y, latency_encoder(0.1), loss, batch_size=16)
        out = net.forward(latency_encoder(0.1)(x))
        share = float((np.asarray(out.counts).sum(axis=1) == 0).mean())
        assert summary["silent_output_share"] == pytest.approx(share)
        assert summary["accuracy"] <= 1 - summary["silent_output_share"] + 1e-12
        if silent is not None:
            assert share == silent and summary["accuracy"] == 0.0
        else:
            assert share < 0.5
    set_dt(net, None)


# The notebook's CPU defaults (notebooks/05_time_discretization.ipynb)
NB = dict(spec="32-10", input_shape=64, theta=[0.1, 0.3], max_spikes=[3, 5], tau_s=0.13, t_max=0.2,
          init=(-0.3, 1.0))


@pytest.mark.slow
def test_digits_sweep_small_dt_matches_continuous_and_large_dt_falls():
    xtr, ytr = datasets.load("digits", "train")
    xte, yte = datasets.load("digits", "test")
    rows, lat = sweep([None, 0.0001, 0.1], lambda dt, seed: build_network(dt=dt, seed=seed, **NB),
                      (xtr, ytr), (xte, yte), epochs=3, encode=latency_encoder(0.1),
                      loss_fn=TTFSCrossEntropy(0.02), optimizer=lambda m: Adam(m, 0.01), batch_size=32,
                      t_grid=np.linspace(0, 0.2, 41))
    acc = {r["dt"]: r["accuracy"] for r in rows}
    print("accuracy by dt:", acc)
    assert all(r["accuracy"] <= 1 - r["silent_output_share"] + 1e-12 for r in rows)
    assert acc[0.0] > 0.85
    assert abs(acc[0.0001] - acc[0.0]) <= 0.01 + 1e-9, "small dt within 1 point of continuous"
    assert acc[0.1] < acc[0.0] - 0.3, "a grid step as long as the coding window (t_in = 100 ms) collapses"
    assert falloff_dt(rows) == 0.1
    hidden = {r["dt"]: r["spikes_per_sample"] for r in rows if r["layer_index"] == 1}
    assert hidden[0.1] < hidden[0.0], "coarse grids make the hidden layer sparser"


@pytest.mark.slow
def test_conv_network_learns_digits():
    xtr, ytr = datasets.load("digits", "train")
    xte, yte = datasets.load("digits", "test")
    net = build_network("8C3-P2-32-10", (8, 8, 1), [0.1, 0.2, 0.3], [1, 3, 5], 0.13, 0.2, init=(-0.3, 1.0))
    tr = Trainer(net, TTFSCrossEntropy(0.02), Adam(net, 0.01), batch_size=32, encode=latency_encoder(0.1),
                 progress=False)
    h = tr.fit((xtr, ytr), val=(xte, yte), epochs=3)
    print("conv digits val acc:", h["val_acc"], "epoch s:", h["time"])
    assert h["val_acc"][-1] > 0.85


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_up_treats_on_grid_times_alike(dtype):
    """Spikes on the grid move exactly one step, whatever float rounding did to them."""
    from snnkit.bats.neuron import grid_up
    dt = 1e-3
    k = np.arange(1, 200)
    rel = 1e-7                                         # float32 rounding noise
    ways = [k * dt, k / 1000.0, np.cumsum(np.full(len(k), dt)), (k * dt) * (1 + rel), (k * dt) * (1 - rel)]
    want = grid_up(np.asarray(k * dt, dtype=dtype), dt)
    np.testing.assert_allclose(want, (k + 1) * dt, rtol=1e-6)
    for t in ways:
        np.testing.assert_array_equal(grid_up(np.asarray(t, dtype=dtype), dt), want)
    off = np.array([0.0, 0.0004, 0.0015, np.inf], dtype=dtype)
    np.testing.assert_allclose(grid_up(off, dt), [0.001, 0.001, 0.002, np.inf], rtol=1e-6)


def _network_inputs(net, x):
    """(input times a spiking layer used, the times the layer before it handed on) per spiking layer after the first."""
    pairs, h, seen = [], x, 0
    for layer in net.layers:
        prev, h = h, layer.forward(h)
        if hasattr(layer, "tau_s"):
            seen += 1
            if seen > 1:                   # the first spiking layer takes the data
                pairs.append((layer, prev))
    return pairs


@pytest.mark.parametrize("spec,shape", [("6-5", 8 * 8), ("4C3-P2-12-10", (8, 8, 1))])
def test_grid_times_enter_the_next_layer_as_they_are(spec, shape):
    """As in the study's code (alexcojocaru2002/bats-time-discretization, bats/Layers/LIFLayer.py: the
    forward integrates the previous layer's discrete spike times): only data move up to the grid; a
    hidden spike reported at k dt reaches the next layer at k dt, not at (k + 1) dt. Through pooling too."""
    dt = 0.005
    net = build_network(spec, shape, [0.05, 0.1, 0.3][:spec.count("-") + 1 - spec.count("P")], [2, 3, 5][:2 + ("C" in spec)],
                        0.13, 0.2, init=(-0.3, 1.0), dtype=np.float64, dt=dt, seed=2)
    x, _ = _digits()
    pairs = _network_inputs(net, x)
    assert pairs
    for layer, prev in pairs:
        used, handed = layer.last.in_used, prev.times
        if used.shape != handed.shape:                      # a conv layer sees patches: compare the set of times
            used, handed = np.unique(used[np.isfinite(used)]), np.unique(handed[np.isfinite(handed)])
        np.testing.assert_array_equal(used, handed)
        assert prev.grid == dt
    first = net.layers[1]
    assert first.last.in_used.min() >= dt                # data on the grid (t = 0) still move a whole step


def test_earliest_report_of_layer_L_is_L_plus_one_steps():
    """Notebook 05's Think!: data at t = 0 are reported at dt, a hidden crossing right after them at 2 dt,
    an output crossing right after that at 3 dt: layer L reports at (L + 1) dt at the earliest."""
    dt = 0.01
    net = build_network("3-2", 2, [0.001, 0.001], [1, 1], 0.13, 0.2, init=(5.0, 6.0), dtype=np.float64, dt=dt)
    x = SpikeTrains(np.zeros((1, 2, 1)), np.ones((1, 2), np.int32))
    net.forward(x)
    hidden, output = net.layers[1].last.times, net.layers[2].last.times
    np.testing.assert_allclose(hidden[np.isfinite(hidden)], 2 * dt)
    np.testing.assert_allclose(output[np.isfinite(output)], 3 * dt)


@pytest.mark.slow
def test_one_training_run_per_point_moves_with_the_seed():
    """Notebook 05 ("What the grid step costs"): on the 1 ms grid, with the notebook's CPU defaults, seed 0
    trains to a network that stays silent on some test digits, seed 1 to one above the continuous network."""
    xtr, ytr = datasets.load("digits", "train")
    xte, yte = datasets.load("digits", "test")
    acc = {}
    for seed in (0, 1):
        rows, _ = sweep([None, 0.001], lambda dt, s: build_network(dt=dt, seed=s, **NB), (xtr, ytr), (xte, yte),
                        epochs=3, encode=latency_encoder(0.1), loss_fn=TTFSCrossEntropy(0.02),
                        optimizer=lambda m: Adam(m, 0.01), batch_size=32, seed=seed)
        acc[seed] = {r["dt"]: (r["accuracy"], r["silent_output_share"]) for r in rows}
    assert acc[0][0.001][1] > 0                        # seed 0: some digits get no output spike
    assert acc[1][0.001][0] > acc[1][0.0][0]          # seed 1: above its continuous network


@pytest.mark.parametrize("dt", [0.003, 0.007])
def test_a_spike_reported_after_t_max_is_not_emitted(dt):
    """As in the study's code (bats/CudaKernels/CuFiles/Inference/compute_spike_times.cu: a discrete time
    > max_simulation stops the neuron): on a grid a neuron reports at its grid time, so a crossing at
    t* <= t_max whose grid time lies past t_max is not emitted. Without a grid the same crossing counts."""
    from snnkit.bats import simulate
    w = np.array([[30.0]])                                         # one strong input: a burst
    x = np.array([[[0.0105]]])
    free = simulate(w, x, 0.05, 0.2, max_spikes=6, dt=dt)          # t_max = inf: every spike it fires
    assert free.counts[0, 0] >= 3
    ts, td = free.t_cont[0, 0, 1], free.times[0, 0, 1]              # its second spike: t* and grid time
    assert ts < td
    cut = simulate(w, x, 0.05, 0.2, max_spikes=6, dt=dt, t_max=(ts + td) / 2)
    assert cut.counts[0, 0] == 1                                    # the second one would report past t_max
    np.testing.assert_array_equal(cut.times[0, 0, :1], free.times[0, 0, :1])
    edge = simulate(w, x, 0.05, 0.2, max_spikes=6, dt=dt, t_max=td)
    assert edge.counts[0, 0] == 2 and edge.times[0, 0, 1] == td     # reported at t_max exactly: it counts
    cont = simulate(w, free.in_used, 0.05, 0.2, max_spikes=6, t_max=(ts + td) / 2)
    assert cont.counts[0, 0] == 2                                   # continuous time: t* <= t_max counts


def test_a_rejected_crossing_loses_its_reset():
    """Notebook 05 ("A rejected spike also loses its reset"), as the study's compute_spike_times.cu: a second
    crossing in the same grid step is rejected together with its reset, so the potential stays above threshold
    and the neuron fires no more from that input, although the continuous trajectory crosses again in later
    steps. Driving it harder can therefore lower its count on a grid, never in continuous time."""
    from snnkit.bats import grid_up, simulate
    w, x, dt = np.array([[30.0]]), np.array([[[0.0105]]]), 0.02
    grid = simulate(w, x, 0.05, 0.2, max_spikes=20, dt=dt)
    cont = simulate(w, grid.in_used, 0.05, 0.2, max_spikes=20)          # the same (grid) input, continuous time
    t = cont.times[0, 0][np.isfinite(cont.times[0, 0])]
    steps = grid_up(t, dt)
    assert steps[0] == steps[1] and len(set(np.round(steps / dt).astype(int))) >= 3   # later crossings in later steps
    assert grid.counts[0, 0] == 1 and grid.times[0, 0, 0] == steps[0]                # the first one only
    rng = np.random.default_rng(0)                                                  # the notebook's 50-input neuron
    t_50 = np.sort(rng.uniform(0, 0.1, 50))[None, :, None]
    W = np.linspace(0.5, 8, 16)[:, None] * np.ones((1, 50))
    n = {}
    for d in (None, 0.008):
        s = simulate(W, t_50, 0.13, 1.3, max_spikes=100, t_max=0.2, dt=d)
        n[d] = (s.counts + s.overflow)[0]                                           # every spike fired
    assert np.all(np.diff(n[None]) >= 0) and np.any(np.diff(n[0.008]) < 0)
