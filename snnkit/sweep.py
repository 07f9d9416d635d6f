"""Sweeps on Dask: ``snnkit sweep NAME [--grid key=v1,v2,...]... [-p key value]... [--scheduler ADDRESS]
[--workers N] [--out DIR]`` (from Python: ``snnkit.sweep.run_sweep(NAME, grid={...})``).

A sweep runs one reproduction (``snnkit/reproduce/``) at every point of a parameter grid. A point is
one execution of the registry entry's notebook with the entry's parameters updated by the point's
values, through ``reproduce.run`` (which executes with :func:`snnkit.notebook_run.execute_notebook`:
papermill, or its plain fallback where papermill is missing, as on a bare GPU machine), submitted as
one task to a Dask distributed cluster:

    embedded (default)     distributed.LocalCluster on this machine: processes, one thread each, as many
                           workers as cores (or --workers N)
    GPUs and dask-cuda     dask_cuda.LocalCUDACluster: one worker per GPU, each pinned to its device
    --scheduler ADDRESS    a cluster you already run (dask-jobqueue on Slurm, dask scheduler + workers);
                           its workers must import snnkit and see DIR (a shared file system)

An entry of ``reproductions/registry.json`` is a sweep when it has a ``sweep`` object:

    grid      {parameter: [values, ...]}: the points are the Cartesian product of the axes. An axis
              named "a,b" sets several parameters together: its values are [value_of_a, value_of_b].
              ``--grid key=v1,v2`` adds an axis, replacing every declared axis that sets "key".
    combine   how the points' metrics.json become rows of the tidy table (``COMBINE``):
              "per_point" one row a point; "by_dt" one row per dt of each point (notebook 05's lists);
              "by_delta" one row per delta (notebook 04's per-delta metrics); "by_cell" one row per
              (model, cell) of the convergence grid (notebook 03)
    figure    the name of the sweep's HTML figure
    about     what a point is, and why the grid is laid out so

Results under DIR (default ``results/sweeps/NAME``):

    points/<key>/           a finished point: the executed notebook, metrics.json, run.json
    attempts/<key>/<id>/    every attempt, kept: a failed one holds its executed notebook and error.txt
    table.csv, table.json   every row of the finished and failed points (table.parquet with pyarrow)
    summary.json            counts, the failed points' errors, the missing points, cluster, wall time
    sweeps.jsonl            one line appended per invocation (what ran, when, with which command)
    <figure>.html           the sweep's figure

Resumable: a point whose ``points/<key>/metrics.json`` exists is skipped. An attempt runs in its own
``attempts/`` folder, renamed to ``points/<key>`` only once its metrics are written, so a crash, a
killed worker or an interrupted sweep never leaves a half-done point that looks finished. A failing
point is retried (Dask ``retries``) and, if it fails again, recorded in the table with its error while
the others go on; a worker that dies mid-point loses only that point, which the scheduler reruns on
another worker. Nothing a point wrote is ever deleted; the table, summary and figure are rebuilt
from the points at the end of every invocation.

The key of a point is its swept values, readable, plus a hash of all its parameters: the same
values under other fixed parameters (``-p epochs 1``) make another point, never a stale match.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import itertools
import json
import math
import os
import re
import shlex
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

from . import reproduce
from .notebook_run import EXECUTORS
from .reproduce import RESULTS, parse_value

SWEEPS = RESULTS / "sweeps"


# ------------------------------------------------------------------ declarations
def list_sweeps(registry: Path | None = None) -> list:
    """The registry entries that declare a ``sweep``."""
    return [r for r in reproduce.load_registry(registry) if isinstance(r.extra.get("sweep"), dict)]


def sweep_spec(rep) -> dict:
    spec = rep.extra.get("sweep")
    if not isinstance(spec, dict):
        raise ValueError(f"reproduction {rep.name!r} declares no sweep; sweeps: "
                         f"{', '.join(r.name for r in list_sweeps()) or '(none)'} (`snnkit sweep --list`)")
    if "grid" not in spec or not isinstance(spec["grid"], dict):
        raise ValueError(f"the sweep of {rep.name!r} must declare a 'grid' object {{parameter: [values]}}")
    combine = spec.get("combine", "per_point")
    if combine not in COMBINE:
        raise ValueError(f"the sweep of {rep.name!r} combines its metrics by {combine!r}; "
                         f"known: {', '.join(COMBINE)}")
    return spec


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: "[0, 1],[0, 5]" -> ["[0, 1]", "[0, 5]"]."""
    out, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    return out + [cur]


def parse_grid(items) -> dict:
    """``--grid`` arguments ``KEY=V1,V2,...`` -> {KEY: [V1, V2, ...]}; each value a Python literal
    (``dts_ms=[0,1],[0,5]``, ``seed=0,1,2``, ``delta,deltas=(0.1,[0.1]),(0.05,[0.05])``) or, failing
    that, a plain string (``dataset=digits,mnist``)."""
    grid = {}
    for item in items:
        key, eq, rest = str(item).partition("=")
        key = key.strip()
        names = [k.strip() for k in key.split(",")]
        if not eq or not all(n.isidentifier() for n in names) or not rest.strip():
            raise ValueError(f"--grid expects KEY=V1,V2,... (e.g. --grid seed=0,1,2 or --grid dts_ms=[0,1],[0,5]); "
                             f"got {item!r}")
        values = [parse_value(v.strip()) for v in _split_top(rest)]
        if any(v == "" for v in values):
            raise ValueError(f"--grid {key}: an empty value in {rest!r} (a stray comma?)")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; list all its values in one --grid {key}=V1,V2,...")
        grid[key] = values
    return grid


def expand(axes: dict) -> list[dict]:
    """The points of a grid: the Cartesian product of its axes, in the declared order, each point a
    {parameter: value} dict (an axis "a,b" with values [x, y] sets a = x and b = y)."""
    names, value_lists = [], []
    for key, values in axes.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"sweep axis {key!r} needs a non-empty list of values, got {values!r}")
        params = [k.strip() for k in key.split(",")]
        if len(params) > 1:
            bad = [v for v in values if not isinstance(v, (list, tuple)) or len(v) != len(params)]
            if bad:
                raise ValueError(f"sweep axis {key!r} sets {len(params)} parameters together: each value must be "
                                 f"a list of {len(params)} (one per parameter), got {bad[0]!r}")
        names.append(params)
        value_lists.append(values)
    points = []
    for combo in itertools.product(*value_lists):
        point = {}
        for params, v in zip(names, combo):
            point.update(zip(params, v) if len(params) > 1 else [(params[0], v)])
        points.append(point)
    return points


def _names(axis: str) -> set[str]:
    return {k.strip() for k in axis.split(",")}


def merge_axes(declared: dict, given: dict | None) -> dict:
    """The registry's axes with ``given`` (--grid) ones replacing every declared axis that sets one
    of the same parameters (``--grid deltas=[0.1]`` replaces the axis "delta,deltas")."""
    given, out = dict(given or {}), {}
    for k, v in declared.items():
        hits = [g for g in given if _names(k) & _names(g)]
        if not hits:
            out[k] = v
        for g in hits:                           # in the declared axis's place, so keys keep their order
            out[g] = given.pop(g)
    return {**out, **given}


def _fmt(v) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt(x) for x in v) or "none"
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


def point_key(values: dict, params: dict) -> str:
    """``dts_ms=0-1__seed=0__3f9a12bc``: the swept values (file-name safe, at most 100 characters)
    and the first 8 hex digits of the sha1 of all of the point's parameters."""
    readable = "__".join(f"{k}={_fmt(v)}" for k, v in values.items())
    readable = re.sub(r"[^A-Za-z0-9._=+-]", "_", readable)[:100] or "point"
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=repr).encode()).hexdigest()[:8]
    return f"{readable}__{digest}"


def plan(name: str, grid: dict | None = None, parameters: dict | None = None, *, registry=None, notebooks=None):
    """(reproduction, spec, points) where each point is {key, values, params}; ``params`` are the
    overrides given to ``reproduce.run``: ``parameters`` (fixed for every point) and the point's
    values. Every parameter is checked against the notebook's parameters cell before anything runs."""
    rep = reproduce.get(name, registry)
    spec = sweep_spec(rep)
    if rep.status == "planned":
        raise ValueError(f"reproduction {name!r} is planned, not runnable yet: {rep.needs}")
    if spec.get("status") == "planned":
        raise ValueError(f"the sweep of {name!r} is planned, not runnable yet: {spec.get('needs', '')}")
    nb_path = rep.notebook_path(notebooks)
    if nb_path is None:
        raise FileNotFoundError(f"sweep {name!r} needs notebooks/{rep.notebook}, which does not exist yet")
    axes = merge_axes(spec["grid"], grid)
    fixed = dict(parameters or {})
    clash = sorted(set().union(*map(_names, axes)) & set(fixed))
    if clash:
        raise ValueError(f"{clash} are both swept (--grid) and fixed (-p); give each parameter in one place")
    nb = json.loads(nb_path.read_text())
    points, seen = [], {}
    for values in expand(axes):
        params = {**fixed, **values}
        merged = {**rep.parameters, **params}
        try:
            reproduce.check_parameters(nb, {**merged, "results_dir": "x"}, nb_path.name)
        except ValueError as e:
            raise ValueError(f"sweep {name!r}, point {values}: {e}") from None
        key = point_key(values, merged)
        if key in seen:
            raise ValueError(f"two points of the grid are the same ({values} and {seen[key]}): a repeated value?")
        seen[key] = values
        points.append({"key": key, "values": values, "params": params})
    return rep, spec, points


# ------------------------------------------------------------------ one point (runs on a worker)
def is_done(out: Path, key: str) -> bool:
    return (Path(out) / "points" / key / "metrics.json").exists()


def point_record(folder: Path) -> dict:
    """The run record of a finished point folder (run.json, with metrics.json's numbers)."""
    folder = Path(folder)
    rec = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    rec["metrics"] = json.loads((folder / "metrics.json").read_text())
    rec["folder"] = str(folder)
    return rec


def run_point(name: str, params: dict, key: str, out: str, registry: str | None = None,
              notebooks: str | None = None, executor: str = "auto", command: str | None = None) -> dict:
    """Run one point into ``out/attempts/<key>/<attempt>/`` and rename that folder to
    ``out/points/<key>`` once it has its metrics. A point finished meanwhile (by an earlier sweep, or
    by a copy of this task on a worker the scheduler thought dead) is not run again; this attempt,
    finished or failed, stays in attempts/."""
    out = Path(out)
    final = out / "points" / key
    if (final / "metrics.json").exists():
        return {**point_record(final), "skipped": True}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    attempt = out / "attempts" / key / f"{stamp}-{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    attempt.mkdir(parents=True)
    try:
        rec = reproduce.run(name, params, attempt, registry=Path(registry) if registry else None,
                            notebooks=Path(notebooks) if notebooks else None, executor=executor,
                            progress=False, command=command, export_html=False)
    except Exception:
        (attempt / "error.txt").write_text(traceback.format_exc())
        raise
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(attempt, final)                 # atomic on one file system; refuses a non-empty target
    except OSError:
        if (final / "metrics.json").exists():     # another copy of this point finished first
            return {**point_record(final), "skipped": True}
        raise
    rec.update(point=key, attempt=str(attempt.relative_to(out)), folder=str(final))
    (final / "run.json").write_text(json.dumps(rec, indent=1))
    return rec


# ------------------------------------------------------------------ combining metrics into rows
def _cell(v):
    """A table cell: numbers, strings, booleans and None as they are; lists as compact JSON."""
    return json.dumps(v) if isinstance(v, (list, tuple, dict)) else v


def combine_per_point(values: dict, metrics: dict) -> list[dict]:
    """One row a point: its swept values and its metrics (lists as JSON)."""
    return [{**{k: _cell(v) for k, v in values.items()}, **{k: _cell(v) for k, v in metrics.items()}}]


def combine_by_dt(values: dict, metrics: dict) -> list[dict]:
    """Notebook 05 writes per-dt lists aligned with ``dts_ms`` (accuracy_by_dt in %,
    spikes_per_sample_<layer>): one row per dt of the point, with its scalar swept values (seed)."""
    dts = metrics.get("dts_ms")
    if not isinstance(dts, list):
        raise ValueError(f"combine 'by_dt' needs the list metric dts_ms; the point wrote {sorted(metrics)}")
    per_dt = {k: v for k, v in metrics.items() if isinstance(v, list) and len(v) == len(dts) and k != "dts_ms"}
    base = {k: v for k, v in values.items() if not isinstance(v, (list, tuple))}
    fixed = {k: metrics[k] for k in ("train_split", "n_train_samples", "n_test_samples", "dataset_stand_in")
             if k in metrics}
    rows = []
    for i, dt in enumerate(dts):
        row = {**base, "dt_ms": dt, **fixed}
        for k, v in per_dt.items():
            row["accuracy" if k == "accuracy_by_dt" else k] = v[i]
        rows.append(row)
    return rows


def combine_by_delta(values: dict, metrics: dict) -> list[dict]:
    """Notebook 04 writes, per delta D of ``deltas``, test_accuracy_delta_D (%), backward_speedup_delta_D,
    active_fraction_delta_D (per hidden layer) and backward_mib_delta_D ([dense, sparse]); its dense
    run's accuracy is test_accuracy_dense. One row per delta."""
    deltas = values.get("deltas", metrics.get("deltas"))
    if not isinstance(deltas, (list, tuple)) or not deltas:
        raise ValueError("combine 'by_delta' needs the swept parameter deltas (a list of half-widths)")
    base = {k: v for k, v in values.items() if k not in ("delta", "deltas") and not isinstance(v, (list, tuple))}
    rows = []
    for d in deltas:
        s = f"_delta_{d:g}"
        if f"test_accuracy{s}" not in metrics:
            raise ValueError(f"combine 'by_delta': the point of deltas={list(deltas)} wrote no test_accuracy{s}")
        active = metrics.get(f"active_fraction{s}") or []
        mib = metrics.get(f"backward_mib{s}") or [None, None]
        rows.append({**base, "delta": d, "b_th": round(1 - d, 12), "test_accuracy": metrics[f"test_accuracy{s}"],
                     "test_accuracy_dense": metrics.get("test_accuracy_dense"),
                     "backward_speedup": metrics.get(f"backward_speedup{s}"),
                     **{f"active_fraction_{i + 1}": a for i, a in enumerate(active)},
                     "backward_mib_dense": mib[0], "backward_mib_sparse": mib[1],
                     **({"dataset_stand_in": True} if metrics.get("dataset_stand_in") else {})})
    return rows


CONVERGENCE_MODES = {"ttfs": "single-spike (TTFS)", "count": "multi-spike (count)"}


def combine_by_cell(values: dict, metrics: dict) -> list[dict]:
    """Notebook 03 writes convergence_rates_ttfs / _count as [mean][std] over its grid
    (convergence_means and convergence_stds where it simulates a part of the grid, else
    convergence_grid for both) with convergence_repeats runs per cell: one row per (model, cell)."""
    grid = metrics.get("convergence_grid")
    means, stds = metrics.get("convergence_means", grid), metrics.get("convergence_stds", grid)
    if means is None or stds is None:
        raise ValueError(f"combine 'by_cell' needs convergence_grid (or convergence_means and _stds); "
                         f"the point wrote {sorted(metrics)}")
    base = {k: v for k, v in values.items() if not isinstance(v, (list, tuple))}
    rows = []
    for mode in CONVERGENCE_MODES:
        rates = metrics.get(f"convergence_rates_{mode}")
        if rates is None:
            continue
        for i, m in enumerate(means):
            for j, s in enumerate(stds):
                rows.append({**base, "model": mode, "mean": m, "std": s, "rate": rates[i][j],
                             "repeats": metrics.get("convergence_repeats")})
    return rows


COMBINE = {"per_point": combine_per_point, "by_dt": combine_by_dt, "by_delta": combine_by_delta,
           "by_cell": combine_by_cell}


def rows_of(spec: dict, point: dict, rec: dict | None, error: str | None = None) -> list[dict]:
    """The table rows of one point: status, key and run facts first, then what ``combine`` makes."""
    head = {"point": point["key"], "status": "ok" if error is None else "failed"}
    if error is not None:
        return [{**head, **{k: _cell(v) for k, v in point["values"].items()}, "error": error}]
    head.update(seconds=rec.get("seconds"), device=rec.get("device"))
    return [{**head, **r} for r in COMBINE[spec.get("combine", "per_point")](point["values"], rec["metrics"])]


# ------------------------------------------------------------------ figures
def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _mean_std(rows, x, y):
    """[(x, mean, std, n)] over the rows that have both, sorted by x (std 0 for one sample)."""
    groups = {}
    for r in rows:
        if _numeric(r.get(x)) and _numeric(r.get(y)):
            groups.setdefault(r[x], []).append(float(r[y]))
    out = []
    for xv in sorted(groups):
        ys = groups[xv]
        m = sum(ys) / len(ys)
        sd = math.sqrt(sum((v - m) ** 2 for v in ys) / (len(ys) - 1)) if len(ys) > 1 else 0.0
        out.append((xv, m, sd, len(ys)))
    return out


def _line(fig, rows, x, y, name, row=1, col=1, **kw):
    import plotly.graph_objects as go
    pts = _mean_std(rows, x, y)
    if not pts:
        return
    fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=name, mode="lines+markers",
                             error_y=dict(type="data", array=[p[2] for p in pts], visible=any(p[3] > 1 for p in pts)),
                             customdata=[p[3] for p in pts], hovertemplate="%{x}: %{y:.4g} (n = %{customdata})",
                             **kw), row=row, col=col)


def table_figure(name: str, rows: list[dict], spec: dict | None = None, registry=None):
    """The sweep's figure from its table rows (mean and standard deviation over repeated x values,
    e.g. seeds): accuracy and spikes per sample vs dt; accuracy and backward speed-up vs delta;
    otherwise each numeric metric vs the first numeric swept parameter. None when nothing is numeric."""
    from plotly.subplots import make_subplots
    spec = spec if spec is not None else sweep_spec(reproduce.get(name, registry))
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    how = spec.get("combine", "per_point")
    stand_in = " (SYNTHETIC STAND-IN data)" if any(r.get("dataset_stand_in") for r in ok) else ""
    if how == "by_dt":
        fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy", "spikes per sample"))
        _line(fig, ok, "dt_ms", "accuracy", "test accuracy")
        for k in sorted({k for r in ok for k in r if k.startswith("spikes_per_sample_")}):
            _line(fig, ok, "dt_ms", k, k[len("spikes_per_sample_"):], col=2)
        fig.update_xaxes(title_text="grid step dt (ms; 0 = continuous time)")
        fig.update_yaxes(title_text="test accuracy (%)", col=1)
        fig.update_yaxes(title_text="spikes per sample", col=2)
    elif how == "by_delta":
        fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy", "backward speed-up (dense / sparse)"))
        _line(fig, ok, "delta", "test_accuracy", "sparse (S3GD)")
        _line(fig, ok, "delta", "test_accuracy_dense", "dense", line=dict(dash="dash"))
        _line(fig, ok, "delta", "backward_speedup", "speed-up", col=2)
        fig.update_xaxes(title_text="delta (b_th = 1 - delta)", type="log")
        fig.update_yaxes(title_text="test accuracy (%)", col=1)
        fig.update_yaxes(title_text="speed-up (x)", col=2)
    elif how == "by_cell":
        from .viz.bats import convergence_heatmaps
        means = sorted({r["mean"] for r in ok})
        stds = sorted({r["std"] for r in ok})
        rates = {}
        for mode, label in CONVERGENCE_MODES.items():
            cells = {}
            for r in ok:                     # cells run more than once (seeds): the share over all their runs
                if r["model"] == mode and _numeric(r.get("rate")):
                    w = r.get("repeats") if _numeric(r.get("repeats")) else 1
                    tot = cells.setdefault((r["mean"], r["std"]), [0.0, 0.0])
                    tot[0] += r["rate"] * w
                    tot[1] += w
            if cells:
                rates[label] = [[cells[(m, s)][0] / cells[(m, s)][1] if (m, s) in cells else None for s in stds]
                                for m in means]
        if not rates:
            return None
        fig = convergence_heatmaps(means, stds, rates)
    else:
        meta = {"point", "status", "seconds", "device", "error"}
        cols = [k for k in dict.fromkeys(k for r in ok for k in r) if k not in meta]
        xs = [k for k in cols if all(_numeric(r.get(k)) for r in ok) and len({r[k] for r in ok}) > 1]
        if not ok or not xs:
            return None
        x = xs[0]
        ys = [k for k in cols if k != x and k not in xs[1:2] and any(_numeric(r.get(k)) for r in ok)][:4]
        if not ys:
            return None
        fig = make_subplots(rows=1, cols=len(ys), subplot_titles=ys)
        for i, y in enumerate(ys):
            _line(fig, ok, x, y, y, col=i + 1)
            fig.update_xaxes(title_text=x, col=i + 1)
    n_points = len({r["point"] for r in ok if "point" in r})
    bars = any(getattr(t, "error_y", None) is not None and t.error_y.visible for t in fig.data)
    fig.update_layout(title=f"sweep {name}: {n_points} point{'s' if n_points != 1 else ''}{stand_in}"
                            + ("<br><sup>mean of the rows at each x; bars: one standard deviation (n on hover)</sup>"
                               if bars else ""), height=400, template="plotly_white")
    return fig


# ------------------------------------------------------------------ writing and reading the table
def write_table(out: Path, rows: list[dict]) -> dict:
    """table.json (exact values), table.csv (all columns, empty where a row has none) and, where
    pyarrow is installed, table.parquet. Returns {format: path}."""
    out = Path(out)
    written = {}
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    written["json"] = out / "table.json"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)
    written["csv"] = out / "table.csv"
    if reproduce._have("pyarrow"):
        import pyarrow as pa
        import pyarrow.parquet as pq
        try:
            pq.write_table(pa.Table.from_pylist(rows), out / "table.parquet")
            written["parquet"] = out / "table.parquet"
        except (pa.ArrowException, TypeError, ValueError) as e:     # a column mixing types: CSV/JSON still hold it
            print(f"[sweep] no Parquet table: {type(e).__name__}: {e}", file=sys.stderr)
    return written


def load_table(name: str, folder: Path | str | None = None, partial: bool = False) -> list[dict] | None:
    """The rows of a sweep's table (``results/sweeps/NAME`` unless ``folder``), as written by its last
    invocation: a list of {column: value} (failed points have status "failed" and their error).
    None when the sweep has not been run there, or, unless ``partial``, when points are still missing."""
    folder = Path(folder) if folder is not None else SWEEPS / name
    try:
        summary = json.loads((folder / "summary.json").read_text())
        rows = json.loads((folder / "table.json").read_text())
    except (OSError, ValueError):
        return None
    if summary.get("name") != name or (summary.get("missing") and not partial):
        return None
    return rows


# ------------------------------------------------------------------ the cluster
def gpu_count() -> int:
    """GPUs visible to this process, counted through NVML (what dask-cuda uses), without creating a
    CUDA context here; 0 where NVML or a driver is missing."""
    try:
        import pynvml
        pynvml.nvmlInit()
        n = pynvml.nvmlDeviceGetCount()
    except Exception:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        n = min(n, len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"]))
    return n


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None, cluster: str = "auto",
                   dashboard_address: str = ":8787"):
    """(client, description): a client of ``scheduler``, or of an embedded cluster that closes with
    the context: LocalCUDACluster with ``cluster="cuda"`` (or "auto" where dask-cuda is installed and
    a GPU is seen), else LocalCluster (processes, one thread each)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ValueError(f"sweeps run on Dask: pip install 'dask[distributed]' ({e})") from None
    if scheduler:
        if workers:
            raise ValueError("--workers sizes the embedded cluster; with --scheduler the cluster's own workers "
                             "run the points (start more there)")
        kw = {"scheduler_file": scheduler} if "://" not in scheduler and Path(scheduler).is_file() else {"address": scheduler}
        with Client(**kw) as client:
            yield client, f"scheduler {scheduler} ({len(client.scheduler_info()['workers'])} workers)"
        return
    if cluster not in ("auto", "local", "cuda"):
        raise ValueError(f"cluster must be 'auto', 'local' or 'cuda', got {cluster!r}")
    if cluster == "auto":
        cluster = "cuda" if reproduce._have("dask_cuda") and gpu_count() > 0 else "local"
    if cluster == "cuda":
        if not reproduce._have("dask_cuda"):
            raise ValueError("--cluster cuda needs dask-cuda: pip install 'snnkit[gpu]' (or pip install dask-cuda)")
        from dask_cuda import LocalCUDACluster
        c = LocalCUDACluster(threads_per_worker=1, dashboard_address=dashboard_address,
                             **({"n_workers": workers} if workers else {}))
        what = "LocalCUDACluster"
    else:
        c = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                         dashboard_address=dashboard_address)
        what = "LocalCluster"
    try:
        with Client(c) as client:
            yield client, f"{what} ({len(c.workers)} workers, 1 thread each)"
    finally:
        c.close()


# ------------------------------------------------------------------ the sweep
def run_sweep(name: str, grid: dict | None = None, parameters: dict | None = None, *,
              out: Path | str | None = None, scheduler: str | None = None, workers: int | None = None,
              cluster: str = "auto", retries: int = 1, registry: Path | None = None,
              notebooks: Path | None = None, executor: str = "auto", progress: bool = True,
              dashboard_address: str = ":8787", command: str | None = None) -> dict:
    """Run the sweep ``name`` (see the module doc): the registry's grid with ``grid``'s axes replacing
    or adding to it, ``parameters`` fixed for every point. Returns the summary (also summary.json):
    ran / skipped / failed ({key: error}) / missing keys, the rows, the table and figure paths."""
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if int(retries) < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    rep, spec, points = plan(name, grid, parameters, registry=registry, notebooks=notebooks)
    out = Path(out or SWEEPS / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = command or "snnkit sweep " + name + "".join(
        f" --grid {k}={','.join(repr(v) for v in vs)}" for k, vs in (grid or {}).items()) + "".join(
        f" -p {k} {shlex.quote(repr(v))}" for k, v in (parameters or {}).items())
    skipped = [p for p in points if is_done(out, p["key"])]
    todo = [p for p in points if not is_done(out, p["key"])]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    print(f"[sweep] {name}: {len(points)} points ({len(skipped)} already done, {len(todo)} to run) -> {out}",
          file=sys.stderr, flush=True)
    records, failed, ran, where, dashboard = {}, {}, [], "nothing to run", None
    interrupted = None
    try:
        if todo:
            with cluster_client(scheduler, workers, cluster, dashboard_address) as (client, where):
                dashboard = client.dashboard_link
                print(f"[sweep] {where}; Dask dashboard: {dashboard}", file=sys.stderr, flush=True)
                records, failed, ran = _submit(client, name, todo, out, retries, registry, notebooks,
                                               executor, command, progress)
    except KeyboardInterrupt as e:                   # keep what finished; the rest runs on the next invocation
        interrupted = e
        print("[sweep] interrupted: finished points are kept; run the same command again to resume",
              file=sys.stderr)
    rows, missing = [], []
    for p in points:
        if is_done(out, p["key"]):
            rec = records.get(p["key"]) or point_record(out / "points" / p["key"])
            rows += rows_of(spec, p, rec)
        elif p["key"] in failed:
            rows += rows_of(spec, p, None, failed[p["key"]])
        else:
            missing.append(p["key"])
    tables = write_table(out, rows)
    fig_path = None
    fig = table_figure(name, rows, spec)
    if fig is not None:
        fig_path = reproduce.save_figure(out, fig, spec.get("figure", "sweep"))
    summary = {
        "name": name, "title": rep.title, "points": len(points), "done": len(points) - len(failed) - len(missing),
        "ran": ran, "skipped": [p["key"] for p in skipped], "failed": failed, "missing": missing,
        "grid": merge_axes(spec["grid"], grid), "parameters": dict(parameters or {}),
        "combine": spec.get("combine", "per_point"), "cluster": where, "dashboard": dashboard,
        "started_utc": started, "seconds": round(time.perf_counter() - t0, 1), "command": command,
        "interrupted": interrupted is not None,
        "table": {k: str(v) for k, v in tables.items()}, "figure": str(fig_path) if fig_path else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out / "sweeps.jsonl", "a") as f:        # append-only history of the invocations
        f.write(json.dumps({k: summary[k] for k in ("started_utc", "seconds", "command", "cluster", "points",
                                                     "ran", "failed", "missing", "interrupted")}) + "\n")
    print(f"[sweep] {name}: {summary['done']}/{len(points)} points done ({len(ran)} ran now, {len(skipped)} "
          f"skipped), {len(failed)} failed, {len(missing)} missing; {summary['seconds']} s; table {tables['csv']}"
          + (f"; figure {fig_path}" if fig_path else ""), file=sys.stderr)
    if interrupted is not None:
        raise interrupted
    return {**summary, "rows": rows, "out": str(out)}


def _submit(client, name, todo, out, retries, registry, notebooks, executor, command, progress):
    """Submit every point, follow them as they finish (tqdm), and sort them into records (finished),
    failed ({key: error}) and ran (keys run now)."""
    from distributed import as_completed
    from tqdm.auto import tqdm
    tag = uuid.uuid4().hex[:6]
    futures = {}
    for p in todo:
        f = client.submit(run_point, name, p["params"], p["key"], str(out), str(registry) if registry else None,
                          str(notebooks) if notebooks else None, executor, command,
                          key=f"{name}-{p['key']}-{tag}", retries=int(retries), pure=False)
        futures[f] = p["key"]
    records, failed, ran = {}, {}, []
    bar = tqdm(total=len(futures), desc=f"sweep {name}", unit="point", disable=not progress, file=sys.stderr)
    try:
        for f in as_completed(futures):
            key = futures[f]
            if f.status == "finished":
                # "skipped" here means a copy of this task found the point finished: the scheduler
                # recomputes a result lost with a dead worker, and run_point does not run it twice
                records[key] = f.result()
                ran.append(key)
            else:
                e = f.exception()
                failed[key] = f"{type(e).__name__}: {e}".strip()
                print(f"\n[sweep] point {key} failed after {retries} retr{'y' if retries == 1 else 'ies'}: "
                      f"{failed[key].splitlines()[0] if failed[key] else ''}", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(failed=len(failed))
    finally:
        bar.close()
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)
    return records, failed, ran


# ------------------------------------------------------------------ command line
def format_list(registry=None) -> str:
    lines = []
    for r in list_sweeps(registry):
        s = r.extra["sweep"]
        try:
            n = len(expand(s["grid"]))
        except ValueError as e:
            n = f"? ({e})"
        lines += [r.name, f"    {r.title}",
                  "    grid:     " + "; ".join(f"{k} = {v}" for k, v in s["grid"].items()) + f"  ({n} points)",
                  f"    combine:  {s.get('combine', 'per_point')} -> {s.get('figure', 'sweep')}.html"]
        if s.get("status") == "planned" or r.status == "planned":
            lines.append(f"    PLANNED:  {s.get('needs') or r.needs}")
        if s.get("about"):
            lines.append(f"    about:    {s['about']}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="snnkit sweep", description=__doc__.split("\n\n")[0],
                                epilog="example: snnkit sweep time_discretization_sweep --grid seed=0,1,2 -p epochs 1")
    p.add_argument("name", nargs="?", help="the sweep to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the sweeps of the registry")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="replace (or add) one axis of the grid; values are Python literals")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="fix a notebook parameter for every point (value parsed as a Python literal)")
    p.add_argument("--stand-in", action="store_true",
                   help="use the synthetic stand-in of the data set (dataset_stand_in=True); labelled")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786) or its scheduler file")
    p.add_argument("--workers", type=int, help="workers of the embedded cluster (default: cores, or GPUs)")
    p.add_argument("--cluster", choices=("auto", "local", "cuda"), default="auto",
                   help="embedded cluster: auto (LocalCUDACluster where dask-cuda sees a GPU), local, cuda")
    p.add_argument("--retries", type=int, default=1, help="reruns of a failing point before it is recorded as failed")
    p.add_argument("--out", help="output folder (default results/sweeps/NAME)")
    p.add_argument("--executor", default="auto", choices=EXECUTORS)
    p.add_argument("--dashboard", default=":8787", help="dashboard address of the embedded cluster (:0 any free port)")
    args = p.parse_args(argv)
    if args.list:
        print(format_list())
        return 0
    if not args.name:
        p.print_usage(sys.stderr)
        print("give a sweep NAME or --list", file=sys.stderr)
        return 2
    try:
        grid = parse_grid(args.grid)
        params = {k: parse_value(v) for k, v in args.parameter}
        if args.stand_in:
            params["dataset_stand_in"] = True
        summary = run_sweep(args.name, grid, params, out=args.out, scheduler=args.scheduler, workers=args.workers,
                            cluster=args.cluster, retries=args.retries, executor=args.executor,
                            dashboard_address=args.dashboard,
                            command="snnkit sweep " + " ".join(shlex.quote(a) for a in argv))
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"[sweep] {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("name", "points", "done", "failed", "missing", "seconds",
                                              "cluster", "table", "figure")}, indent=1))
    return 1 if summary["failed"] or summary["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
