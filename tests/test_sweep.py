"""Sweeps on Dask (snnkit/sweep.py): the mechanics on a tiny notebook written by the test, run by
the built-in executor inside the workers (a point takes well under a second, so the tests measure
the machinery: parallel == serial, a killed worker, an interrupted and resumed sweep, a failing
point), and one real registry sweep (notebook 05's dt study at tiny settings, through papermill)
that must give the numbers of the same study run serially in one notebook."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("distributed")

from snnkit import reproduce, sweep

ROOT = Path(__file__).resolve().parent.parent
# The notebook of the mechanics tests: metrics computed from its parameters; it logs every
# execution (to count what ran), can fail on one point, and can hold one point until killed.
PARAMS = textwrap.dedent("""\
    results_dir = None
    n = 1
    m = 0
    delay = 0.0
    fail_on = -1
    hold_on = -1
    hold_file = ""
    log = ""
    """)
BODY = textwrap.dedent("""\
    import os, time
    from snnkit.reproduce import save_metrics
    if log:
        with open(log, "a") as f:
            f.write(f"{n},{m}\\n")
    if n == hold_on and not os.path.exists(hold_file):     # first attempt only: wait to be killed
        with open(hold_file + ".part", "w") as f:
            f.write(str(os.getpid()))
        os.replace(hold_file + ".part", hold_file)
        time.sleep(60)
    time.sleep(delay)
    if n == fail_on:
        raise RuntimeError(f"diverged at n = {n}")
    save_metrics(results_dir, score=n * n + 0.5 * m, curve=[n, n + m], label=f"n{n}")
    """)


def write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 sweep test notebook\nWhat you will learn: nothing."),
                nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "09_sweep.ipynb")
    return folder / "09_sweep.ipynb"


@pytest.fixture
def tiny(tmp_path):
    """(registry, notebooks, log): a registry whose entry "grid" sweeps n x m over the test notebook."""
    nbs = tmp_path / "notebooks"
    write_notebook(nbs)
    log = tmp_path / "ran.log"
    entry = {"name": "grid", "title": "a tiny sweep", "notebook": "09_*.ipynb", "parameters": {"log": str(log)},
             "sweep": {"grid": {"n": [1, 2], "m": [0, 1]}, "combine": "per_point", "figure": "score"},
             "target": {"paper": "nobody", "figure": "-", "metric": "score", "value": None},
             "expected_gpu_time": "1 s"}
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"reproductions": [entry]}))
    return reg, nbs, log


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def strip(rows):
    """Rows without what differs between two runs of the same point (wall time)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


KW = dict(executor="plain", progress=False, dashboard_address=":0")


# ------------------------------------------------------------------ declarations and parsing
def test_parse_grid_and_expand():
    g = sweep.parse_grid(["dts_ms=[0,1],[0, 5]", "seed=0,1,2", "dataset=digits,mnist", "delta,deltas=(0.1,[0.1])"])
    assert g == {"dts_ms": [[0, 1], [0, 5]], "seed": [0, 1, 2], "dataset": ["digits", "mnist"],
                 "delta,deltas": [(0.1, [0.1])]}
    points = sweep.expand(g)
    assert len(points) == 2 * 3 * 2
    assert points[0] == {"dts_ms": [0, 1], "seed": 0, "dataset": "digits", "delta": 0.1, "deltas": [0.1]}
    for bad, msg in (("seed", "KEY=V1,V2"), ("seed=", "KEY=V1,V2"), ("9x=1", "KEY=V1,V2"), ("seed=1,,2", "empty value")):
        with pytest.raises(ValueError, match=msg):
            sweep.parse_grid([bad])
    with pytest.raises(ValueError, match="given twice"):
        sweep.parse_grid(["seed=1", "seed=2"])
    with pytest.raises(ValueError, match="each value must be a list of 2"):
        sweep.expand({"a,b": [1, 2]})
    with pytest.raises(ValueError, match="non-empty list"):
        sweep.expand({"a": []})
    declared = {"delta,deltas": [[0.2, [0.2]]], "seed": [0]}
    assert list(sweep.merge_axes(declared, {"deltas": [[0.1]], "n": [1]}).items()) == [
        ("deltas", [[0.1]]), ("seed", [0]), ("n", [1])]
    assert sweep.merge_axes(declared, {"seed": [1, 2]}) == {"delta,deltas": [[0.2, [0.2]]], "seed": [1, 2]}


def test_point_keys_are_readable_and_follow_every_parameter():
    k1 = sweep.point_key({"dts_ms": [0, 0.5], "seed": 1}, {"dts_ms": [0, 0.5], "seed": 1, "epochs": 10})
    k2 = sweep.point_key({"dts_ms": [0, 0.5], "seed": 1}, {"dts_ms": [0, 0.5], "seed": 1, "epochs": 1})
    assert k1.startswith("dts_ms=0-0.5__seed=1__") and k1 != k2          # a fixed parameter changes the key
    assert sweep.point_key({"s": "a/b c"}, {}).startswith("s=a_b_c__")


def test_registry_sweeps_are_well_formed():
    sweeps = sweep.list_sweeps()
    assert {"time_discretization_sweep", "s3gd_shd_delta_sweep", "bats_convergence"} <= {r.name for r in sweeps}
    for rep in sweeps:
        spec = sweep.sweep_spec(rep)
        if spec.get("status") == "planned":
            assert spec["needs"], f"the planned sweep of {rep.name} says what it still needs"
            with pytest.raises(ValueError, match="planned"):
                sweep.plan(rep.name)
            continue
        if rep.notebook_path() is None:
            continue
        _, _, points = sweep.plan(rep.name)       # every swept name is declared by the notebook
        assert len(points) == len(sweep.expand(spec["grid"])) >= 2
        assert len({p["key"] for p in points}) == len(points)
    assert "time_discretization_sweep" in sweep.format_list() and "PLANNED" in sweep.format_list()


def test_plan_checks_names_before_anything_runs(tiny):
    reg, nbs, _ = tiny
    with pytest.raises(ValueError, match=r"\['nn'\] are not declared"):
        sweep.plan("grid", {"nn": [1]}, registry=reg, notebooks=nbs)
    with pytest.raises(ValueError, match="both swept"):
        sweep.plan("grid", None, {"n": 3}, registry=reg, notebooks=nbs)
    with pytest.raises(ValueError, match="declares no sweep"):
        sweep.plan("stbp_resnet19_mnist")
    with pytest.raises(ValueError, match="unknown reproduction"):
        sweep.plan("nope", registry=reg, notebooks=nbs)


def test_combine_by_dt_and_by_delta():
    m = {"dts_ms": [0.0, 2.0], "accuracy_by_dt": [90.0, 80.0], "spikes_per_sample_1:LIFDense": [10.0, 7.0],
         "test_accuracy": 90.0, "train_split": "train"}
    rows = sweep.combine_by_dt({"dts_ms": [0, 2], "seed": 3}, m)
    assert rows == [{"seed": 3, "dt_ms": 0.0, "train_split": "train", "accuracy": 90.0, "spikes_per_sample_1:LIFDense": 10.0},
                    {"seed": 3, "dt_ms": 2.0, "train_split": "train", "accuracy": 80.0, "spikes_per_sample_1:LIFDense": 7.0}]
    m = {"test_accuracy_delta_0.05": 70.0, "backward_speedup_delta_0.05": 3.0, "active_fraction_delta_0.05": [0.1, 0.2],
         "backward_mib_delta_0.05": [8.0, 1.0], "test_accuracy_dense": 72.0}
    (row,) = sweep.combine_by_delta({"delta": 0.05, "deltas": [0.05], "seed": 0}, m)
    assert row == {"seed": 0, "delta": 0.05, "b_th": 0.95, "test_accuracy": 70.0, "test_accuracy_dense": 72.0,
                   "backward_speedup": 3.0, "active_fraction_1": 0.1, "active_fraction_2": 0.2,
                   "backward_mib_dense": 8.0, "backward_mib_sparse": 1.0}
    with pytest.raises(ValueError, match="no test_accuracy_delta_0.1"):
        sweep.combine_by_delta({"deltas": [0.1]}, m)
    # notebook 03's convergence metrics ([mean][std] over its grid); two points holding a row of means each
    rows = []
    for i, mean in enumerate([0.0, 0.5]):
        m = {"convergence_means": [mean], "convergence_stds": [0.0, 0.5], "convergence_repeats": 4,
             "convergence_rates_ttfs": [[0.25 * i, 0.5]], "convergence_rates_count": [[1.0, 0.75 - 0.5 * i]]}
        rows += [{"point": f"p{i}", "status": "ok", **r} for r in sweep.combine_by_cell({"conv_means": [mean]}, m)]
    assert len(rows) == 8 and rows[0] == {"point": "p0", "status": "ok", "model": "ttfs", "mean": 0.0, "std": 0.0,
                                          "rate": 0.0, "repeats": 4}
    fig = sweep.table_figure("bats_convergence", rows, {"combine": "by_cell"})
    assert [list(t.z) for t in fig.data] == [[[0.0, 0.5], [0.25, 0.5]], [[1.0, 0.75], [1.0, 0.25]]]
    whole = sweep.combine_by_cell({}, {"convergence_grid": [0.0, 0.5], "convergence_rates_ttfs": [[1, 0], [0, 1]]})
    assert [(r["mean"], r["std"], r["rate"]) for r in whole] == [(0.0, 0.0, 1), (0.0, 0.5, 0), (0.5, 0.0, 0), (0.5, 0.5, 1)]
    fig = sweep.table_figure("x", [{"point": "a", "status": "ok", **r} for r in sweep.combine_by_dt(
        {"seed": 0}, {"dts_ms": [0.0, 1.0], "accuracy_by_dt": [1.0, 2.0]})], {"combine": "by_dt"})
    assert fig.layout.xaxis.title.text.startswith("grid step dt (ms")


# ------------------------------------------------------------------ the mechanics on Dask
def test_two_workers_equal_the_same_points_run_serially(tiny, tmp_path):
    reg, nbs, log = tiny
    res = sweep.run_sweep("grid", out=tmp_path / "dask", workers=2, cluster="local", registry=reg, notebooks=nbs, **KW)
    assert res["cluster"].startswith("LocalCluster (2 workers") and res["dashboard"].startswith("http")
    assert res["done"] == 4 and not res["failed"] and not res["missing"] and len(res["ran"]) == 4
    # the same points, one after another in this process, without Dask
    _, spec, points = sweep.plan("grid", registry=reg, notebooks=nbs)
    serial = []
    for p in points:
        rec = sweep.run_point("grid", p["params"], p["key"], str(tmp_path / "serial"), str(reg), str(nbs), "plain")
        serial += sweep.rows_of(spec, p, rec)
    table = sweep.load_table("grid", tmp_path / "dask")
    assert strip(table) == strip(serial)
    assert [r["score"] for r in table] == [1.0, 1.5, 4.0, 4.5] and table[0]["curve"] == "[1, 1]"
    csv_text = (tmp_path / "dask" / "table.csv").read_text().splitlines()
    assert csv_text[0].startswith("point,status,seconds,device,n,m,score") and len(csv_text) == 5
    assert (tmp_path / "dask" / "score.html").exists()
    for p in points:                                      # each point: executed notebook, metrics, run record
        folder = tmp_path / "dask" / "points" / p["key"]
        assert {"metrics.json", "run.json", "grid.ipynb"} <= {f.name for f in folder.iterdir()}
        assert json.loads((folder / "run.json").read_text())["folder"] == str(folder)
    if reproduce._have("pyarrow"):
        assert (tmp_path / "dask" / "table.parquet").exists()


def test_a_killed_worker_loses_only_its_point(tiny, tmp_path):
    reg, nbs, log = tiny
    hold = tmp_path / "held.pid"
    killed = []

    def killer():                                        # kill the worker process that holds point n = 2
        for _ in range(600):
            if hold.exists():
                pid = int(hold.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.1)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = sweep.run_sweep("grid", {"n": [1, 2, 3]}, {"hold_on": 2, "hold_file": str(hold)}, out=tmp_path / "s",
                          workers=2, cluster="local", registry=reg, notebooks=nbs, **KW)
    t.join(5)
    assert killed and killed[0] != os.getpid()
    assert res["done"] == 6 and not res["failed"] and not res["missing"]
    assert sorted(ran(log)).count("2,0") + sorted(ran(log)).count("2,1") >= 3     # a point of n = 2 ran twice
    assert all(ran(log).count(f"{n},{m}") == 1 for n in (1, 3) for m in (0, 1))  # the others once
    attempts = {k.name: sorted(a.name for a in k.iterdir()) for k in (tmp_path / "s" / "attempts").iterdir()}
    (held,) = [k for k, a in attempts.items() if a]       # the killed attempt's folder is kept (finished ones
    assert held.startswith("n=2__") and len(attempts[held]) == 1       # were renamed to points/<key>)
    assert not (tmp_path / "s" / "attempts" / held / attempts[held][0] / "metrics.json").exists()
    assert (tmp_path / "s" / "points" / held / "metrics.json").exists()


def test_an_interrupted_sweep_resumes_with_only_the_missing_points(tiny, tmp_path):
    reg, nbs, log = tiny
    out = tmp_path / "s"
    script = textwrap.dedent(f"""\
        from snnkit import sweep
        sweep.run_sweep("grid", {{"n": [1, 2, 3]}}, {{"delay": 1.5}}, out={str(out)!r}, workers=1, cluster="local",
                        registry={str(reg)!r}, notebooks={str(nbs)!r}, executor="plain", progress=False,
                        dashboard_address=":0")
        """)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list((out / "points").glob("*/metrics.json"))) < 2:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)                 # Ctrl-C on the sweep, not on its workers
        text = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "interrupted" in text, text[-2000:]
    done_before = {p.parent.name: p.read_text() for p in (out / "points").glob("*/metrics.json")}
    assert 2 <= len(done_before) < 6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and len(summary["missing"]) == 6 - len(done_before)
    assert sweep.load_table("grid", out) is None and len(sweep.load_table("grid", out, partial=True)) == len(done_before)
    lines_before = len(ran(log))
    res = sweep.run_sweep("grid", {"n": [1, 2, 3]}, {"delay": 1.5}, out=out, workers=2, cluster="local",
                          registry=reg, notebooks=nbs, **KW)
    assert sorted(res["skipped"]) == sorted(done_before) and sorted(res["ran"]) == sorted(summary["missing"])
    assert len(ran(log)) - lines_before == len(summary["missing"])          # only the missing points ran
    assert all((out / "points" / k / "metrics.json").read_text() == v for k, v in done_before.items())
    assert res["done"] == 6 and len(sweep.load_table("grid", out)) == 6
    history = [json.loads(x) for x in (out / "sweeps.jsonl").read_text().splitlines()]
    assert [h["interrupted"] for h in history] == [True, False]
    again = sweep.run_sweep("grid", {"n": [1, 2, 3]}, {"delay": 1.5}, out=out, registry=reg, notebooks=nbs, **KW)
    assert again["ran"] == [] and again["cluster"] == "nothing to run" and len(again["skipped"]) == 6


def test_a_failing_point_is_retried_recorded_and_the_others_finish(tiny, tmp_path):
    reg, nbs, log = tiny
    out = tmp_path / "s"
    res = sweep.run_sweep("grid", None, {"fail_on": 2}, out=out, workers=2, cluster="local", retries=1,
                          registry=reg, notebooks=nbs, **KW)
    assert res["done"] == 2 and len(res["failed"]) == 2 and not res["missing"]
    assert all("diverged at n = 2" in e for e in res["failed"].values())
    assert ran(log).count("2,0") == 2 and ran(log).count("1,0") == 1           # one retry, then recorded
    rows = json.loads((out / "table.json").read_text())
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"] and "diverged" in rows[2]["error"]
    for key in res["failed"]:                              # both attempts kept, with the error and the notebook
        attempts = list((out / "attempts" / key).iterdir())
        assert len(attempts) == 2 and all("diverged" in (a / "error.txt").read_text() for a in attempts)
        assert not (out / "points" / key).exists()


def test_an_existing_cluster_runs_the_points(tiny, tmp_path):
    """--scheduler ADDRESS: the points go to the workers of a cluster that the user started."""
    from distributed import LocalCluster
    reg, nbs, log = tiny
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        res = sweep.run_sweep("grid", {"n": [5]}, out=tmp_path / "s", scheduler=cluster.scheduler_address,
                              registry=reg, notebooks=nbs, **KW)
        assert res["cluster"] == f"scheduler {cluster.scheduler_address} (1 workers)" and res["done"] == 2
        with pytest.raises(ValueError, match="--workers sizes the embedded cluster"):
            sweep.run_sweep("grid", {"n": [6]}, out=tmp_path / "s", scheduler=cluster.scheduler_address,
                            workers=2, registry=reg, notebooks=nbs, **KW)
    assert sorted(ran(log)) == ["5,0", "5,1"]


def test_cli_reports_bad_input(tiny, capsys, monkeypatch, tmp_path):
    reg, nbs, _ = tiny
    assert sweep.main(["--list"]) == 0 and "time_discretization_sweep" in capsys.readouterr().out
    assert sweep.main([]) == 2
    assert sweep.main(["time_discretization_sweep", "--grid", "seed"]) == 1
    assert "--grid expects KEY=V1,V2" in capsys.readouterr().err
    assert sweep.main(["time_discretization_sweep", "--workers", "0"]) == 1
    assert "workers must be at least 1, got 0" in capsys.readouterr().err
    assert sweep.main(["time_discretization_sweep", "--grid", "epocs=1,2"]) == 1
    assert "['epocs'] are not declared" in capsys.readouterr().err
    assert sweep.main(["bats_convergence"]) == 1 and "planned" in capsys.readouterr().err
    if not reproduce._have("dask_cuda"):
        assert sweep.main(["time_discretization_sweep", "--cluster", "cuda", "--out", str(tmp_path)]) == 1
        assert "--cluster cuda needs dask-cuda" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "snnkit.cli", "sweep", "--list"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and "s3gd_shd_delta_sweep" in r.stdout, r.stderr


# ------------------------------------------------------------------ one real registry sweep
def test_time_discretization_sweep_on_dask_equals_the_serial_study(tmp_path, monkeypatch):
    """Notebook 05's dt study at tiny settings: two points (dt 2 ms and 5 ms, each with its dt = 0
    reference) on two workers through papermill give, per dt, the numbers of one serial run of the
    notebook over dts_ms = [0, 2, 5]."""
    monkeypatch.setenv("SNNKIT_BACKEND", "numpy")
    rep = reproduce.get("time_discretization_sweep")
    if rep.notebook_path() is None:
        pytest.skip("notebook 05 is not there")
    tiny = {"dataset": "digits", "train_split": "train", "arch": "16-10", "theta": [0.1, 0.3], "max_spikes": [3, 5],
            "targets": [3, 1], "epochs": 1, "n_train": 60, "n_test": 40}      # digits: embedded, no download
    res = sweep.run_sweep("time_discretization_sweep", {"dts_ms": [[0, 2], [0, 5]]}, tiny, out=tmp_path / "sw",
                          workers=2, cluster="local", executor="papermill", progress=False, dashboard_address=":0")
    assert res["done"] == 2 and not res["failed"]
    rows = sweep.load_table("time_discretization_sweep", tmp_path / "sw")
    assert [r["dt_ms"] for r in rows] == [0.0, 2.0, 0.0, 5.0] and all(r["seed"] == 0 for r in rows)
    serial = reproduce.run("time_discretization_sweep", {**tiny, "dts_ms": [0, 2, 5]}, tmp_path / "serial",
                           executor="plain", progress=False)["metrics"]
    layers = [k for k in serial if k.startswith("spikes_per_sample_")]
    assert layers
    for r in rows:
        i = serial["dts_ms"].index(r["dt_ms"])
        assert r["accuracy"] == pytest.approx(serial["accuracy_by_dt"][i])
        for k in layers:
            assert r[k] == pytest.approx(serial[k][i])
    html = (tmp_path / "sw" / "accuracy_sparsity_vs_dt.html").read_text()
    assert "test accuracy (%)" in html and "spikes per sample" in html
