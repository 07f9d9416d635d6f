import numpy as np
import pytest

from snnkit.spikes import SpikeTrains, from_lists, from_raster


def test_from_lists_counts_overflow():
    s = from_lists([[[0.3, 0.1], [], [0.1, 0.2, 0.3]]], n_slots=2)
    assert s.shape == (1, 3, 2)
    np.testing.assert_array_equal(s.counts, [[2, 0, 2]])
    np.testing.assert_array_equal(s.overflow, [[0, 0, 1]])
    np.testing.assert_allclose(s.times[0, 0], [0.1, 0.3])
    assert s.n_overflow() == 1 and s.n_spikes() == 4
    s.validate()


def test_validate_names_the_problem():
    t = np.array([[[0.2, 0.1]]])
    with pytest.raises(ValueError, match="sorted"):
        SpikeTrains(t, np.array([[2]])).validate("in_times")
    with pytest.raises(ValueError, match="NaN"):
        SpikeTrains(np.array([[[np.nan]]]), np.array([[1]])).validate()
    with pytest.raises(ValueError, match="counts"):
        SpikeTrains(np.array([[[0.1, np.inf]]]), np.array([[2]])).validate()
    with pytest.raises(ValueError, match=r"\[batch, neurons, slots\]"):
        SpikeTrains(np.zeros((2, 3)), np.zeros((2, 3))).validate()


def test_raster_roundtrip():
    r = np.zeros((2, 10, 3), dtype=np.float32)
    r[0, 2, 1] = r[0, 5, 1] = r[1, 9, 0] = 1
    s = from_raster(r, dt=0.001)
    back, outside = s.to_raster(0.001, 10)
    np.testing.assert_array_equal(back, r)
    assert outside == 0
    _, outside = s.to_raster(0.001, 5)
    assert outside == 2
    s1 = from_raster(r, dt=1.0, max_spikes=1)
    assert s1.n_overflow() == 1
