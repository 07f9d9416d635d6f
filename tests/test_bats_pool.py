"""2x2 spike-merge pooling: forward against a brute-force merge, exact backward by finite
differences, bad input, and (GPU) CuPy against NumPy."""
import numpy as np
import pytest

from snnkit.bats.pool import SpikePool2d, merge_pool
from snnkit.spikes import SpikeTrains

from gradcheck import fd_check


def random_map(rng, B, H, W, C, S, p_spike=0.6, dtype=np.float64):
    """Random spike trains over an [H, W, C] map: distinct times (no ties), sorted, +inf padded."""
    N = H * W * C
    counts = rng.binomial(S, p_spike, size=(B, N)).astype(np.int32)
    times = np.sort(rng.uniform(0.0, 1.0, size=(B, N, S)), axis=2)
    slot = np.arange(S)[None, None, :]
    times = np.where(slot < counts[:, :, None], times, np.inf).astype(dtype)
    overflow = rng.integers(0, 2, size=(B, N)).astype(np.int32)
    return SpikeTrains(times, counts, overflow)


def brute_merge(sp, H, W, C):
    t = np.asarray(sp.times)
    B = t.shape[0]
    out = []
    for b in range(B):
        rows = []
        for i in range(H // 2):
            for j in range(W // 2):
                for c in range(C):
                    ts = []
                    for di in (0, 1):
                        for dj in (0, 1):
                            n = ((2 * i + di) * W + (2 * j + dj)) * C + c
                            ts += [x for x in t[b, n] if np.isfinite(x)]
                    rows.append(sorted(ts))
        out.append(rows)
    return out


@pytest.mark.parametrize("B,H,W,C,S", [(1, 2, 2, 1, 1), (3, 4, 6, 2, 3), (2, 8, 8, 3, 2)])
def test_merge_matches_brute_force(B, H, W, C, S):
    rng = np.random.default_rng(B * 100 + H + S)
    sp = random_map(rng, B, H, W, C, S)
    out = SpikePool2d((H, W, C)).forward(sp)
    out.validate("pooled")
    ref = brute_merge(sp, H, W, C)
    assert out.times.shape[1] == (H // 2) * (W // 2) * C
    assert out.times.shape[2] == max(max(len(r) for rows in ref for r in rows), 1)
    for b in range(B):
        for n, r in enumerate(ref[b]):
            assert out.counts[b, n] == len(r)
            np.testing.assert_array_equal(out.times[b, n, :len(r)], r)
            assert np.all(np.isinf(out.times[b, n, len(r):]))
    # lost spikes of the 4 sources add up in the merged neuron
    ov = sp.overflow.reshape(B, H // 2, 2, W // 2, 2, C).sum(axis=(2, 4)).reshape(B, -1)
    np.testing.assert_array_equal(out.overflow, ov)
    assert out.n_spikes() == sp.n_spikes()


def test_backward_is_exact_by_finite_differences():
    rng = np.random.default_rng(7)
    B, H, W, C, S = 2, 4, 4, 2, 2
    sp = random_map(rng, B, H, W, C, S)
    pool = SpikePool2d((H, W, C))
    out = pool.forward(sp)
    g_out = rng.normal(size=out.times.shape)
    g_out = np.where(np.isfinite(out.times), g_out, 0.0)

    times = sp.times.copy()

    def loss():
        o = SpikePool2d((H, W, C)).forward(SpikeTrains(times, sp.counts, sp.overflow))
        return float(np.sum(np.where(np.isfinite(o.times), o.times, 0.0) * g_out))

    g_in = pool.backward(g_out)
    assert g_in.shape == sp.times.shape
    b, n, s = np.nonzero(np.isfinite(sp.times))
    # eps well below the smallest gap between spike times
    fd_check(loss, [times], [g_in], eps=1e-7, rtol=0, atol=1e-6, entries=[list(zip(b, n, s))[::3]])
    assert np.all(g_in[~np.isfinite(sp.times)] == 0)
    # a permutation moves errors without changing their total
    assert np.isclose(g_in.sum(), g_out.sum())


def test_ties_route_each_error_once():
    # two neurons of one window fire at the same time: each input slot gets exactly one error
    t = np.full((1, 4, 1), np.inf); t[0, 0, 0] = t[0, 3, 0] = 0.5
    sp = SpikeTrains(t, np.isfinite(t).sum(axis=2).astype(np.int32))
    pool = SpikePool2d((2, 2, 1))
    out = pool.forward(sp)
    g = pool.backward(np.array([[[1.0, 2.0]]]))
    assert sorted(g[0, [0, 3], 0].tolist()) == [1.0, 2.0]
    assert out.counts[0, 0] == 2


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="even height and width"):
        SpikePool2d((5, 4, 1))
    with pytest.raises(ValueError, match="input_shape"):
        SpikePool2d((4, 4))
    pool = SpikePool2d((4, 4, 1))
    with pytest.raises(ValueError, match="spikes.times"):
        pool.forward(random_map(np.random.default_rng(0), 1, 4, 2, 1, 1))
    pool.forward(random_map(np.random.default_rng(0), 1, 4, 4, 1, 1))
    with pytest.raises(ValueError, match="grad_out"):
        pool.backward(np.zeros((1, 3, 1)))


def test_silent_map_keeps_one_slot():
    t = np.full((2, 16, 3), np.inf)
    out = merge_pool(SpikeTrains(t, np.zeros((2, 16), np.int32)), (4, 4, 1))[0]
    assert out.times.shape == (2, 4, 1) and out.n_spikes() == 0


@pytest.mark.gpu
@pytest.mark.parametrize("B,H,W,C,S", [(3, 8, 8, 4, 2), (1500, 4, 4, 2, 3)])
def test_gpu_matches_numpy(cp, B, H, W, C, S):
    rng = np.random.default_rng(B)
    sp = random_map(rng, B, H, W, C, S, dtype=np.float32)
    ref_pool, gpu_pool = SpikePool2d((H, W, C)), SpikePool2d((H, W, C))
    ref = ref_pool.forward(sp)
    out = gpu_pool.forward(SpikeTrains(cp.asarray(sp.times), cp.asarray(sp.counts), cp.asarray(sp.overflow)))
    np.testing.assert_array_equal(cp.asnumpy(out.times), ref.times)
    np.testing.assert_array_equal(cp.asnumpy(out.counts), ref.counts)
    np.testing.assert_array_equal(cp.asnumpy(out.overflow), ref.overflow)
    g = rng.normal(size=ref.times.shape).astype(np.float32)
    np.testing.assert_array_equal(cp.asnumpy(gpu_pool.backward(cp.asarray(g))), ref_pool.backward(g))
