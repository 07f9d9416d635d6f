"""Lessons 05 (time discretization) and 07 (reproductions), issue 13.

- the exercise checks of notebook 05 (snnkit/exercises/discretization.py): their truth is snnkit's own
  grid rule, the one the simulation applies; each check's three verdicts;
- notebook 07 never puts a stand-in number beside a paper number (reproduce.paper_comparable /
  pipeline_checks, and the executed page's bars and table);
- the executed pages themselves (slow): no stderr, no stray Out[] text, every claim printed as holding,
  the sweep shows the silent-output share beside the accuracy and the latency curves have a colour
  each, and no hard-coded numbers of a day's run in the prose.
"""
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from snnkit import exercises, lessons, reproduce
from snnkit.bats.neuron import grid_up
from snnkit.bats.simulate import simulate
from snnkit.exercises.discretization import grid_time_ms, merge_dt_ms

ROOT = Path(__file__).resolve().parents[1]
NB05 = ROOT / "notebooks" / "05_time_discretization.ipynb"
NB07 = ROOT / "notebooks" / "07_reproductions.ipynb"


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")


# ------------------------------------------------------------------ exercise truths come from snnkit
def test_grid_time_is_the_simulations_grid_rule():
    """The check's truth is what the simulation reports: one input at t_i on a grid dt moves to
    grid_time(t_i), and the output spike is reported at grid_time(t*) of its continuous crossing."""
    w, t = np.array([[1.0]]), np.array([[[0.0123]]])
    for dt_ms in (1.0, 5.0, 7.0):
        sim = simulate(w, t, 0.13, 0.05, t_max=1.0, dt=dt_ms / 1000)
        assert np.isclose(1000 * float(sim.in_used[0, 0, 0]), grid_time_ms(12.3, dt_ms))
        t_star = 1000 * float(sim.t_cont[0, 0, 0])
        assert np.isclose(1000 * float(sim.times[0, 0, 0]), grid_time_ms(t_star, dt_ms))
    assert grid_time_ms(23.0, 5.0) == 25.0 and grid_time_ms(25.0, 5.0) == 30.0      # on the grid: a whole step
    assert grid_time_ms(25.0, 5.0) == pytest.approx(1000 * float(grid_up(np.array(0.025), 0.005)))
    with pytest.raises(ValueError, match="dt_ms"):
        grid_time_ms(1.0, 0.0)


def test_merge_dt_is_the_first_shared_grid_time_and_not_monotonic():
    assert merge_dt_ms(31.0, 38.0) == 10
    assert grid_time_ms(31.0, 10) == grid_time_ms(38.0, 10) == 40.0
    assert grid_time_ms(31.0, 11) != grid_time_ms(38.0, 11)          # a coarser grid splits them again
    assert all(grid_time_ms(31.0, d) != grid_time_ms(38.0, d) for d in range(1, 10))
    assert merge_dt_ms(1.0, 2.0, max_dt_ms=1) is None                 # 1 ms grid: 2 and 3 ms, never merged
    with pytest.raises(ValueError, match="t1_ms < t2_ms"):
        merge_dt_ms(38.0, 31.0)


def test_check_dt_grid_time(lenient, capsys):
    assert exercises.check_dt_grid_time(...) is None
    assert exercises.check_dt_grid_time((25.0, 30.0)) is True
    assert exercises.check_dt_grid_time([25, 30]) is True
    assert exercises.check_dt_grid_time((25.0, 25.0)) is False          # forgot the whole step on the grid
    assert exercises.check_dt_grid_time((20.0, 25.0)) is False          # rounded down
    assert exercises.check_dt_grid_time(25.0) is False                  # one number for two crossings
    assert exercises.check_dt_grid_time("abc") is False
    assert exercises.check_dt_grid_time((3.0,), t_star_ms=(2.5,), dt_ms=1.0) is True
    out = capsys.readouterr().out
    assert "STRICTLY after" in out and "rounds UP" in out and "give 2 numbers" in out


def test_check_dt_merge(lenient, capsys):
    assert exercises.check_dt_merge(...) is None
    assert exercises.check_dt_merge(10) is True
    assert exercises.check_dt_merge(7) is False                         # not longer than their distance
    assert exercises.check_dt_merge(8) is False                         # a grid line in between
    assert exercises.check_dt_merge(13) is False                        # merges, but not the smallest
    assert exercises.check_dt_merge(3, t1_ms=1.5, t2_ms=2.5) is True    # 3 ms grid: both at 3 ms
    out = capsys.readouterr().out
    assert "longer than 7 ms" in out and "32 and 40 ms" in out


def test_check_dt_falloff(lenient):
    rows = [{"dt": 0.0, "continuous": True, "accuracy": 0.9}, {"dt": 0.01, "accuracy": 0.88},
            {"dt": 0.03, "accuracy": 0.80}, {"dt": 0.06, "accuracy": 0.1}]
    assert exercises.check_dt_falloff(..., rows) is None
    assert exercises.check_dt_falloff(30, rows) is True
    assert exercises.check_dt_falloff(60, rows) is False
    assert exercises.check_dt_falloff(10, rows) is False
    flat = rows[:2]
    assert exercises.check_dt_falloff(None, flat) is True              # never falls: None is the answer
    assert exercises.check_dt_falloff(10, flat) is False


def test_report_steps_follow_the_grid_rules():
    """The output layer's reporting steps on the recorded MNIST grids (window 200 ms), counted here by walking
    the grid with the simulation's own rounding (grid_up) from layer 2's earliest report, 3 dt (tested in
    test_bats_dt.py), to the last grid time the t_max rule lets through (td <= t_max, also tested there)."""
    from snnkit.bats.neuron import grid_up
    from snnkit.exercises.discretization import report_steps
    assert report_steps(7.0, 200.0, 2) == 26 and report_steps(8.0, 200.0, 2) == 23   # 200 ms = 25 steps of 8 ms
    for dt_ms in (1.0, 3.0, 6.0, 7.0, 8.0, 10.0, 30.0):
        for layer in (1, 2, 3):
            dt, t, n = dt_ms / 1000, 0.0, 0
            for _ in range(layer + 1):                   # data up to dt, then one step per layer
                t = float(grid_up(np.float64(t), dt))
            while t <= 0.2 + 1e-12:
                n, t = n + 1, float(grid_up(np.float64(t), dt))
            assert report_steps(dt_ms, 200.0, layer) == n, (dt_ms, layer)


def test_check_dt_report_steps(lenient, capsys):
    assert exercises.check_dt_report_steps(...) is None
    assert exercises.check_dt_report_steps((26, 23)) is True
    assert exercises.check_dt_report_steps((28, 25)) is False               # forgot the earliest report
    assert "3 dt at the earliest" in capsys.readouterr().out
    assert exercises.check_dt_report_steps((27, 24)) is False               # one end counted wrong
    assert "count both ends" in capsys.readouterr().out
    assert exercises.check_dt_report_steps("26, 23") is False               # not numbers: a hint, no crash


def test_a_wrong_answer_fails_in_strict_mode(monkeypatch):
    monkeypatch.setenv(lessons.STRICT_ENV, "1")
    with pytest.raises(exercises.ExerciseFailed, match="dt_merge"):
        exercises.check_dt_merge(8)


# ------------------------------------------------------------------ notebook 07: stand-ins apart
def _rows(tmp_path, stand_in):
    rec = {"name": "time_discretization_sweep", "metrics": {"test_accuracy_dt_1ms": 91.0},
           "dataset_stand_in": stand_in, "started_utc": "2026-12-02T00:00:00", "device": "cpu", "command": "x"}
    folder = tmp_path / ("standin" if stand_in else "real")
    folder.mkdir()
    (folder / "time_discretization_sweep.json").write_text(json.dumps(rec))
    return reproduce.comparison(None, reproduce.recorded_results(tmp_path / "none", folder))


def test_stand_in_rows_are_never_comparable(tmp_path):
    rows = _rows(tmp_path, stand_in=True)
    assert [r["name"] for r in reproduce.pipeline_checks(rows)] == ["time_discretization_sweep"]
    assert reproduce.paper_comparable(rows) == []
    rows = _rows(tmp_path, stand_in=False)
    assert [r["name"] for r in reproduce.paper_comparable(rows)] == ["time_discretization_sweep"]
    assert reproduce.pipeline_checks(rows) == []
    # the label may sit in the metrics only (older records): still a stand-in
    rows = reproduce.comparison(None, {"time_discretization_sweep": {
        "name": "time_discretization_sweep", "metrics": {"test_accuracy_dt_1ms": 91.0, "dataset_stand_in": True},
        "source": "results/"}})
    assert reproduce.paper_comparable(rows) == [] and len(reproduce.pipeline_checks(rows)) == 1


def test_the_records_in_the_repository_split_as_labelled(tmp_path):
    recorded = reproduce.recorded_results(tmp_path / "no_results")     # reproductions/recorded/ only
    assert recorded, "the repository keeps records"
    rows = reproduce.comparison(None, recorded)
    comparable = {r["name"] for r in reproduce.paper_comparable(rows)}
    checks = {r["name"] for r in reproduce.pipeline_checks(rows)}
    for name, rec in recorded.items():
        if rec.get("dataset_stand_in") or rec["metrics"].get("dataset_stand_in"):
            assert name in checks and name not in comparable
        elif rec["metrics"].get(reproduce.get(name).target["metric"]) is not None:
            assert name in comparable and name not in checks


def test_registry_cites_the_discretization_study_by_its_repository():
    reg = json.loads((ROOT / "reproductions" / "registry.json").read_text())
    sweep = next(r for r in reg["reproductions"] if r["name"] == "time_discretization_sweep")
    assert "github.com/alexcojocaru2002/bats-time-discretization" in sweep["target"]["paper"] + sweep["notes"]
    text = json.dumps(reg)
    assert "notebook 04's summary" not in text and "Bacho & Chu, BATS" not in text


# ------------------------------------------------------------------ the executed pages (slow)
def _execute(path, tmp_path_factory):
    from snnkit.tour import execute_notebook
    out = tmp_path_factory.mktemp(path.stem) / path.name
    execute_notebook(path, out, strict_claims=True, timeout=600)
    return nbformat.read(out, as_version=4)


def _outputs(nb):
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            yield i, o


def _plotly(nb):
    return [(i, o["data"]["application/vnd.plotly.v1+json"]) for i, o in _outputs(nb)
            if o.get("output_type") == "display_data" and "application/vnd.plotly.v1+json" in o.get("data", {})]


def _page_is_clean(nb):
    for i, o in _outputs(nb):
        assert not (o.get("output_type") == "stream" and o.get("name") == "stderr"), f"cell {i}: stderr {o['text'][:200]}"
        assert o.get("output_type") != "error", f"cell {i}: {o.get('ename')}"
        if o.get("output_type") == "execute_result":
            text = o["data"].get("text/plain", "")
            assert "plotly_mimetype" not in text and text not in ("True", "False", "None"), f"cell {i}: Out {text[:80]}"
        if o.get("output_type") == "stream":
            assert "✗" not in o["text"] and "claim does NOT hold" not in o["text"], f"cell {i}: {o['text'][:300]}"


@pytest.fixture(scope="module")
def nb05(tmp_path_factory):
    return _execute(NB05, tmp_path_factory)


@pytest.fixture(scope="module")
def nb07(tmp_path_factory):
    return _execute(NB07, tmp_path_factory)


@pytest.mark.slow
def test_lesson_05_page(nb05):
    _page_is_clean(nb05)
    text = "".join(o.get("text", "") for _, o in _outputs(nb05))
    # the showcase digit is chosen, and said to be right, in continuous time
    assert "✓ claim: the showcase digit is classified correctly" in text
    # every accuracy of the sweep is printed with the share of silent outputs beside it
    assert "silent out" in text and "accuracy among the answered samples" in text
    figs = _plotly(nb05)
    acc_panel = [f for _, f in figs if any(t.get("name") == "samples with a silent output" for t in f["data"])]
    assert acc_panel, "the sweep figure shows the silent-output share beside the accuracy"
    lat = [f for _, f in figs if f["layout"].get("title", {}).get("text", "").startswith("Latency")]
    assert lat, "the latency figure is on the page"
    colors = [t["line"]["color"] for t in lat[0]["data"]]
    assert len(colors) == len(set(colors)) >= 2, f"every latency curve has its own colour: {colors}"
    md = "\n".join(c.source for c in nb05.cells if c.cell_type == "markdown")
    assert not re.search(r"20\d\d-\d\d-\d\d", md), "no dated, hard-coded numbers of a run in the prose"
    assert "github.com/alexcojocaru2002/bats-time-discretization" in md and "Bacho & Chu 2023" in md


@pytest.mark.slow
def test_lesson_07_page(nb07):
    _page_is_clean(nb07)
    rows = reproduce.comparison()
    stand_in = {r["name"] for r in reproduce.pipeline_checks(rows)}
    real = {r["name"] for r in reproduce.paper_comparable(rows)}
    for i, fig in _plotly(nb07):
        for trace in fig["data"]:
            if trace.get("type") == "bar":              # an axis with paper numbers: real-data runs only
                assert set(trace["x"]) <= real, f"cell {i}: {trace['x']}"
            if trace.get("type") == "table":
                header = trace["header"]["values"]
                cols = dict(zip(header, trace["cells"]["values"]))
                if "paper" in header:                   # beside a paper column, no stand-in number
                    for name, ours in zip(cols["reproduction"], cols["ours (real data)"]):
                        assert name in real or not re.search(r"\d", ours), f"cell {i}: {name} {ours}"
                    for r in rows:                      # a record's caveat is shown where its number is
                        if r["caveat"] and r["name"] in real:
                            assert r["caveat"] in cols["from"][cols["reproduction"].index(r["name"])]
                else:
                    assert set(cols["pipeline check"]) == stand_in
    md = "\n".join(c.source for c in nb07.cells if c.cell_type == "markdown")
    assert "github.com/alexcojocaru2002/bats-time-discretization" in md and "Bacho" in md and "## Summary" in md


def test_lesson_07_dropdown_callback_for_every_reproduction(monkeypatch):
    """Notebook 07's dropdown callback (show_reproduction), called for every option the dropdown offers,
    as the static tour precomputes them: each describes its entry, with a record's caveat where it has one."""
    import plotly.basedatatypes
    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show", lambda self, *a, **k: None)   # no renderer here
    nb = nbformat.read(NB07, as_version=4)
    ns = {}
    for i in (1, 2, 6, 11):                       # parameters, imports and rows, the table helpers, the callback
        exec(compile(nb.cells[i].source, f"07 cell {i}", "exec"), ns)
    rows = {r["name"]: r for r in ns["rows"]}
    for name in rows:
        text = ns["show_reproduction"](name)
        assert text.startswith(f"{name}: ")
        assert (f"  caveat   {rows[name]['caveat']}" in text) is bool(rows[name]["caveat"])
