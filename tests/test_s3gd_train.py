"""S3GD trains on digits (log-latency, CPU defaults): sparse >= 92% test accuracy and within 2
points of dense at delta = 0.2; the active fractions are reported."""
import pytest

from snnkit.s3gd import train_digits

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("numpy_backend")]


def test_sparse_training_matches_dense_on_digits():
    sp = train_digits(sparse=True, seed=0)
    de = train_digits(sparse=False, seed=0)
    print(f"\nsparse: test {sp['test_acc']:.4f} in {sp['seconds']:.1f} s, active fractions {sp['active']}")
    print(f"dense:  test {de['test_acc']:.4f} in {de['seconds']:.1f} s")
    assert sp["test_acc"] >= 0.92
    assert sp["test_acc"] >= de["test_acc"] - 0.02
    assert all(0 < f < 0.2 for f in sp["active"].values())
