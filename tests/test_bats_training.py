"""BATS end to end on the CPU: digits with the spike-count loss, yin-yang with the TTFS loss (slow),
and the convergence experiment at a small size."""
import numpy as np
import pytest

import snnkit.bats as sb
from snnkit.bats.convergence import convergence_grid
from snnkit.bats.recipes import digits_count, yinyang_ttfs

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.mark.slow
def test_digits_count_loss_reaches_95_percent():
    trainer, history, acc, seconds = digits_count(epochs=10)
    print(f"digits 64-128(10)-10(30), count loss: test accuracy {acc:.4f} in {seconds:.1f} s")
    assert acc >= 0.95


@pytest.mark.slow
def test_yinyang_ttfs_reaches_95_percent():
    trainer, history, acc, seconds = yinyang_ttfs(epochs=15)
    print(f"yin-yang 5-120(1)-3(1), TTFS loss: test accuracy {acc:.4f} in {seconds:.1f} s")
    assert acc >= 0.95


def test_convergence_grid_small():
    grid = np.arange(0, 2.5, 0.6)
    count = convergence_grid(grid, grid, repeats=8, mode="count", seed=1)
    ttfs = convergence_grid(grid, grid, repeats=8, mode="ttfs", seed=1)
    assert count.shape == ttfs.shape == (len(grid), len(grid))
    assert 0 <= count.min() and count.max() <= 1
    assert count.mean() > ttfs.mean()          # multi-spike learns from more initializations
    with pytest.raises(ValueError, match="mode"):
        convergence_grid(grid, grid, mode="rate")
