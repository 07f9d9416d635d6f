"""The BATS convergence experiment at many repeats per cell, split over processes (issue 16).

Notebook 03 (``snnkit reproduce bats_convergence``) runs the paper's grid (weight mean and std on
arange(0, 2.5, 0.2)) at the paper's 100 runs per cell in one process. A rate measured from n runs
has a standard error sqrt(p (1 - p) / n), 5 points at p = 0.5 and n = 100, so single cells of the
100-run maps move by several points from seed to seed. This script runs the same function
(``snnkit.bats.convergence.convergence_runs``, the notebook's) with ``--repeats`` runs per cell,
one task per (mode, row of the grid's means) with the seed ``--seed + row``, over ``--workers``
processes, and writes the notebook's metrics (same keys) plus per-cell standard errors and the
count of cells where multi-spike beats single-spike by more than 2 of them.

    python reproductions/convergence_grid.py --repeats 400 --workers 8 --out results/convergence/metrics.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("SNNKIT_BACKEND", "numpy")          # the toy layer is host work (NumPy)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np                                         # noqa: E402


def _row(args):
    mode, i, mean, grid, repeats, seed = args
    from snnkit.bats.convergence import convergence_runs
    r = convergence_runs([mean], grid, repeats=repeats, mode=mode, seed=seed + i)
    return mode, i, r["converged"][0].mean(axis=1), r["dead_start"][0].mean(axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=400, help="runs per (mean, std) cell (paper: 100)")
    ap.add_argument("--step", type=float, default=0.2, help="grid step of mean and std (paper: 0.2)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="metrics JSON to write")
    a = ap.parse_args(argv)
    if a.repeats < 1 or a.workers < 1 or not a.step > 0:
        raise SystemExit("--repeats and --workers must be >= 1 and --step > 0")
    grid = np.arange(0, 2.5, a.step)
    tasks = [(m, i, float(g), grid, a.repeats, a.seed) for m in ("count", "ttfs") for i, g in enumerate(grid)]
    rates = {m: np.zeros((len(grid), len(grid))) for m in ("count", "ttfs")}
    dead = np.zeros((len(grid), len(grid)))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        for mode, i, r, d in pool.map(_row, tasks):
            rates[mode][i] = r
            if mode == "count":
                dead[i] = d
    secs = time.perf_counter() - t0
    r_t, r_c = rates["ttfs"], rates["count"]
    se = np.sqrt((r_t * (1 - r_t) + r_c * (1 - r_c)) / a.repeats)         # of the per-cell difference
    metrics = dict(
        convergence_rate_ttfs=float(r_t.mean()), convergence_rate_count=float(r_c.mean()),
        convergence_rate_count_minus_ttfs=float(r_c.mean() - r_t.mean()),
        convergence_grid=[round(float(g), 6) for g in grid], convergence_repeats=int(a.repeats),
        convergence_rates_ttfs=r_t.tolist(), convergence_rates_count=r_c.tolist(),
        convergence_dead_start=float(dead.mean()),
        convergence_cells_count_higher_2se=int(((r_c - r_t) > 2 * se).sum()),
        convergence_cells_ttfs_higher_2se=int(((r_t - r_c) > 2 * se).sum()),
        convergence_max_cell_se=float(np.sqrt(0.25 / a.repeats)),
        seeds=f"row i of the means uses seed {a.seed} + i (both modes: the same initial weights)",
        seconds=round(secs, 1), workers=a.workers)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"convergence grid {len(grid)}x{len(grid)}, {a.repeats} runs per cell, {secs:.1f} s: "
          f"TTFS {r_t.mean():.3f}, count {r_c.mean():.3f}, difference {r_c.mean() - r_t.mean():+.3f}; "
          f"count higher by > 2 se in {metrics['convergence_cells_count_higher_2se']} of {r_t.size} cells, "
          f"lower in {metrics['convergence_cells_ttfs_higher_2se']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
