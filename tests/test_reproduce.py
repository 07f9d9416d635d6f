"""The reproduction runner, tested on a tiny notebook written by the test (the method notebooks are
run on a GPU machine with their full parameters; here only the machinery is exercised)."""
import json
import shlex
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")       # GPU machines run the suite without Jupyter

from snnkit import reproduce
from snnkit.datasets import REAL
from snnkit.notebook_run import execute_notebook  # noqa: E402
from snnkit.reproduce import NotebookFailed

REQUIRED = {"bats_mnist_single_spike", "bats_mnist_multi_spike", "bats_mnist_conv", "bats_convergence",
            "time_discretization_sweep", "s3gd_fashion_mnist", "s3gd_shd_delta_sweep", "stbp_resnet19_mnist"}

BODY = """import numpy as np
from snnkit.datasets import load
from snnkit.reproduce import save_metrics
d = load("mnist", "test", stand_in=True, limit=n) if dataset_stand_in else None
acc = 0.5 + 0.1 * n
print("accuracy", acc)
save_metrics(results_dir, test_accuracy=np.float32(acc).item(), n=np.int64(n))
save_metrics(results_dir, samples=len(d) if d is not None else 0)
if results_dir is not None:
    with open(results_dir + "/figure.html", "w") as f:
        f.write("<html>figure</html>")
"""


def make_notebook(folder, body=BODY, params="results_dir = None\ndataset_stand_in = False\nn = 2\n"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 tiny reproduction\nWhat you will learn: nothing."),
                nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body),
                nbformat.v4.new_code_cell("n * 10")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(exist_ok=True)
    path = folder / "09_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def make_registry(tmp_path, **params):
    reg = tmp_path / "registry.json"
    entry = {"name": "tiny", "title": "a tiny reproduction", "notebook": "09_*.ipynb", "dataset": "mnist",
             "parameters": {"n": 3, **params},
             "target": {"paper": "nobody", "figure": "Fig. 0", "metric": "test_accuracy", "value": 0.8},
             "expected_gpu_time": "1 s"}
    planned = {**entry, "name": "later", "status": "planned", "needs": "notebook 09 must learn to fly"}
    reg.write_text(json.dumps({"reproductions": [entry, planned]}))
    return reg


@pytest.fixture
def setup(tmp_path):
    nbs = tmp_path / "notebooks"
    make_notebook(nbs)
    return make_registry(tmp_path), nbs, tmp_path / "results" / "tiny"


def test_registry_covers_the_issue_and_is_well_formed():
    reps = reproduce.list_reproductions()
    assert REQUIRED <= {r.name for r in reps}
    for r in reps:
        assert r.target["metric"] and r.target["paper"] and r.expected_gpu_time
        assert r.notebook.endswith(".ipynb")
        assert not r.parameters.get("dataset_stand_in")           # a stand-in is never the default


@pytest.mark.parametrize("rep", reproduce.list_reproductions(), ids=lambda r: r.name)
def test_registry_agrees_with_the_notebooks_that_exist(rep):
    nb = rep.notebook_path()
    if nb is None:
        pytest.skip(f"notebooks/{rep.notebook} is not written yet")
    if rep.status == "planned":
        assert rep.needs, "a planned entry says what its notebook still needs"
        pytest.skip(f"{rep.name} is planned: {rep.needs}")
    # what `snnkit reproduce` checks before it runs: the full CONTRACT (results_dir ...) and every
    # name the registry injects must be declared in the notebook's parameters cell
    notebook = json.loads(nb.read_text())
    _, src = reproduce.parameters_cell(notebook)
    declared = set(reproduce.declared_parameters(src))
    missing = [k for k in reproduce.CONTRACT if k not in declared]
    assert not missing, f"{nb.name} is a ready reproduction but does not declare {missing}"
    unknown = set(rep.parameters) - declared
    assert not unknown, f"{nb.name} does not declare {sorted(unknown)}: align reproductions/registry.json"
    reproduce.check_parameters(notebook, {**rep.parameters, "results_dir": "results/x"}, nb.name)
    if rep.dataset in REAL:         # a downloaded data set: the notebook must be able to run on its stand-in
        assert "dataset_stand_in" in declared, f"{nb.name} reads {rep.dataset} but does not declare dataset_stand_in"
    # ... and it must write metrics.json, with the metric the registry compares with the paper
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "save_metrics(results_dir" in code, f"{nb.name} never calls save_metrics(results_dir, ...)"
    metric = rep.target["metric"]           # literally, or as an f-string such as f"backward_speedup_delta_{d:g}"
    assert metric in code or metric.rsplit("_", 1)[0] + "_{" in code, f"{nb.name} never names the metric {metric!r}"


@pytest.mark.parametrize("rep", reproduce.list_reproductions(), ids=lambda r: r.name)
def test_rerun_hints_offer_only_what_the_notebook_accepts(rep):
    hints = reproduce.rerun_hints(rep)
    if rep.status == "planned" or rep.notebook_path() is None:
        assert hints == []
        return
    nb = json.loads(rep.notebook_path().read_text())
    assert hints[0] == ("rerun", f"snnkit reproduce {rep.name}")
    for _, command in hints:
        args = shlex.split(command.split("   (")[0])[2:]        # after "snnkit reproduce"
        assert args.pop(0) == rep.name
        params = {}
        while args:
            flag = args.pop(0)
            if flag == "-p":
                key, value = args.pop(0), args.pop(0)
                params[key] = reproduce.parse_value(value)
            else:
                assert flag == "--stand-in", command
                params["dataset_stand_in"] = True
        reproduce.check_parameters(nb, {**rep.parameters, **params, "results_dir": "r"}, rep.name)
    assert any("--stand-in" in c for _, c in hints) == (rep.dataset in REAL)


def test_rerun_hints_follow_the_parameters_cell(tmp_path):
    nbs = tmp_path / "notebooks"
    make_notebook(nbs, params="results_dir = None\ndataset_stand_in = False\nn = 2\nepochs = 3\n")
    tiny = reproduce.get("tiny", make_registry(tmp_path))
    assert [label for label, _ in reproduce.rerun_hints(tiny, nbs)] == ["rerun", "quick", "no data"]
    assert reproduce.rerun_hints(tiny, nbs)[1][1] == "snnkit reproduce tiny -p epochs 1"
    make_notebook(nbs, params="results_dir = None\nn = 2\n")       # no epochs, no stand-in: neither hint
    assert reproduce.rerun_hints(tiny, nbs) == [("rerun", "snnkit reproduce tiny")]
    make_notebook(nbs, params="n = 2\n")                           # not a reproduction notebook at all
    assert reproduce.rerun_hints(tiny, nbs) == []


# Tiny CPU settings of every ready reproduction: each runs end to end through `snnkit reproduce`
# (its parameter checks, the notebook, metrics.json) on its stand-in, so "ready" means it runs.
SMOKE = {
    "bats_mnist_single_spike": {"epochs": 1, "n_train": 40, "n_test": 40},
    "bats_mnist_multi_spike": {"epochs": 1, "n_train": 40, "n_test": 40},
    "bats_mnist_conv": {"epochs": 1, "n_train": 8, "n_test": 8},
    "time_discretization_sweep": {"epochs": 1, "n_train": 40, "n_test": 40, "dts_ms": [0, 1, 5]},
    "bats_convergence": {"yy_epochs": 1, "yy_train": 200, "digits_epochs": 1, "conv_repeats": 2, "conv_step": 1.0},
    "s3gd_fashion_mnist": {"epochs": 1, "limit": 128, "n_hidden": 32, "n_steps": 40, "batch_size": 64},
    "s3gd_shd_delta_sweep": {"epochs": 1, "limit": 64, "n_hidden": 32, "n_steps": 50, "batch_size": 64,
                             "deltas": [0.2, 0.05]},
    "stbp_resnet19_mnist": {"epochs": 1, "limit": 64, "width": 4, "blocks": [1, 1, 1], "fc": 16},
}


@pytest.mark.slow
@pytest.mark.parametrize("rep", [r for r in reproduce.list_reproductions() if r.status != "planned"],
                         ids=lambda r: r.name)
def test_every_ready_reproduction_runs_on_cpu(rep, tmp_path, monkeypatch):
    assert rep.name in SMOKE, f"give {rep.name} tiny CPU settings in SMOKE"
    monkeypatch.setenv("SNNKIT_BACKEND", "numpy")                  # the papermill kernel inherits it
    # The lessons' claims (snnkit/lessons.py) describe their notebooks' defaults, which the notebook
    # tests hold them to; these tiny runs only have to run end to end, so a claim prints, not fails.
    monkeypatch.setenv("SNNKIT_STRICT_CLAIMS", "0")
    params = {**SMOKE[rep.name], **({"dataset_stand_in": True} if rep.dataset in REAL else {})}
    rec = reproduce.run(rep.name, params, tmp_path / rep.name, executor="papermill", progress=False)
    assert isinstance(rec["metrics"].get(rep.target["metric"]), (int, float)), sorted(rec["metrics"])
    assert rec["dataset_stand_in"] == (rep.dataset in REAL)
    assert any(f.endswith(".html") and f != f"{rep.name}.html" for f in rec["files"]), "a figure is saved"


def test_list_works_from_the_command_line():
    r = subprocess.run([sys.executable, "-m", "snnkit.cli", "reproduce", "--list"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in REQUIRED:
        assert name in r.stdout
    assert "GPU time" in r.stdout and "target" in r.stdout


@pytest.mark.parametrize("executor", ["plain", "papermill"])
def test_run_collects_notebook_metrics_and_figures(setup, executor):
    reg, nbs, out = setup
    rec = reproduce.run("tiny", {"n": 4}, out, registry=reg, notebooks=nbs, executor=executor, progress=False)
    assert rec["metrics"]["test_accuracy"] == pytest.approx(0.9) and rec["metrics"]["n"] == 4
    assert rec["parameters"]["results_dir"] == str(out.resolve()) and rec["executor"] == executor
    assert rec["dataset_stand_in"] is False and "stand_in" not in json.dumps(rec["metrics"])
    for f in ("tiny.ipynb", "metrics.json", "figure.html", "run.json", "tiny.html"):
        assert (out / f).exists(), f
    page = (out / "tiny.html").read_text()          # one file: plotly.js inside, nothing beside it needed
    assert rec["html"] == "tiny.html" and 'src="plotly.min.js"' not in page and "accuracy 0.9" in page
    assert json.loads((out / "run.json").read_text())["metrics"] == rec["metrics"]
    executed = nbformat.read(out / "tiny.ipynb", as_version=4)
    text = json.dumps(executed.cells[-2:] if executor == "plain" else executed.cells)
    assert "accuracy 0.9" in text and "40" in text              # printed output and the last expression
    assert rec["target"]["value"] == 0.8 and "snnkit reproduce tiny -p n 4" == rec["command"]


def test_stand_in_is_explicit_and_labelled(setup, capsys):
    reg, nbs, out = setup
    rec = reproduce.run("tiny", {"dataset_stand_in": True}, out, registry=reg, notebooks=nbs,
                        executor="plain", progress=False)
    assert rec["dataset_stand_in"] is True and rec["metrics"]["dataset_stand_in"] is True
    assert json.loads((out / "metrics.json").read_text())["dataset_stand_in"] is True
    assert rec["metrics"]["samples"] == 3
    assert "SYNTHETIC STAND-IN" in capsys.readouterr().err


def test_unknown_or_missing_parameters_are_errors(setup, tmp_path):
    reg, nbs, out = setup
    with pytest.raises(ValueError, match=r"\['epocs'\] are not declared"):
        reproduce.run("tiny", {"epocs": 3}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    make_notebook(nbs, params="results_dir = None\nn = 2\n")
    with pytest.raises(ValueError, match="cannot run on a synthetic stand-in"):
        reproduce.run("tiny", {"dataset_stand_in": True}, out, registry=reg, notebooks=nbs, executor="plain",
                      progress=False)
    make_notebook(nbs, params="n = 2\n")
    with pytest.raises(ValueError, match="must declare"):
        reproduce.run("tiny", {}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    with pytest.raises(ValueError, match="unknown reproduction"):
        reproduce.run("nope", registry=reg, notebooks=nbs)
    with pytest.raises(ValueError, match="planned, not runnable yet: notebook 09 must learn to fly"):
        reproduce.run("later", registry=reg, notebooks=nbs)
    assert "PLANNED:  notebook 09 must learn to fly" in reproduce.format_list(reproduce.list_reproductions(reg), nbs)
    with pytest.raises(FileNotFoundError, match="does not exist yet"):
        reproduce.run("tiny", registry=reg, notebooks=tmp_path / "empty")


def test_failures_are_reported_with_the_executed_notebook(setup):
    reg, nbs, out = setup
    make_notebook(nbs, body="raise RuntimeError('diverged')")
    with pytest.raises(NotebookFailed, match="diverged"):
        reproduce.run("tiny", {}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    assert "diverged" in (out / "tiny.ipynb").read_text()
    make_notebook(nbs, body="print('forgot the metrics')")
    (out / "metrics.json").write_text('{"test_accuracy": 1.0}')         # a stale file from an old run
    with pytest.raises(NotebookFailed, match="wrote no metrics.json"):
        reproduce.run("tiny", {}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)


def test_main_parses_parameters_and_reports_errors(setup, monkeypatch, capsys):
    reg, nbs, out = setup
    monkeypatch.setattr(reproduce.registry, "REGISTRY", reg)      # where every default path is looked up
    monkeypatch.setattr(reproduce.registry, "NOTEBOOKS", nbs)
    assert reproduce.main(["tiny", "-p", "n", "5", "--stand-in", "--out", str(out), "--executor", "plain"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["n"] == 5 and printed["dataset_stand_in"] is True
    assert reproduce.main(["tiny", "-p", "typo", "1", "--out", str(out), "--executor", "plain"]) == 1
    assert "typo" in capsys.readouterr().err
    assert reproduce.main([]) == 2
    assert reproduce.parse_value("1e-3") == 1e-3 and reproduce.parse_value("[0.5, 1]") == [0.5, 1]
    assert reproduce.parse_value("mnist") == "mnist" and reproduce.parse_value("True") is True


def test_recorded_results_prefer_fresh_runs(setup, tmp_path):
    reg, nbs, out = setup
    rec_dir = tmp_path / "recorded"
    rec_dir.mkdir()
    (rec_dir / "tiny.json").write_text(json.dumps({"name": "tiny", "metrics": {"test_accuracy": 0.1}}))
    got = reproduce.recorded_results(tmp_path / "results", rec_dir)
    assert got["tiny"]["metrics"]["test_accuracy"] == 0.1 and got["tiny"]["source"].startswith("recorded")
    reproduce.run("tiny", {}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    got = reproduce.recorded_results(tmp_path / "results", rec_dir)
    assert got["tiny"]["metrics"]["n"] == 3 and got["tiny"]["source"] == "results/"


def test_comparison_puts_ours_next_to_the_paper(setup, tmp_path):
    reg, nbs, out = setup
    reps = reproduce.list_reproductions(reg)
    rows = reproduce.comparison(reps, {})
    assert rows[0]["ours"] is None and rows[0]["source"] == "not run yet" and rows[0]["paper"] == 0.8
    reproduce.run("tiny", {"dataset_stand_in": True}, out, registry=reg, notebooks=nbs, executor="plain",
                  progress=False)
    rows = reproduce.comparison(reps, reproduce.recorded_results(tmp_path / "results", tmp_path / "none"))
    assert rows[0]["ours"] == pytest.approx(0.8) and rows[0]["dataset_stand_in"] is True
    assert rows[0]["date"] and rows[0]["command"].startswith("snnkit reproduce tiny")


def test_plain_executor_needs_no_jupyter(tmp_path):
    """The bare GPU machine has no papermill/jupyter: the plain fallback of execute_notebook runs the
    cells in order in a plain Python process, skips IPython magics and injects the parameters right
    after the parameters cell."""
    path = make_notebook(tmp_path / "nbs", body="%matplotlib inline\n!echo hi\nimport sys\n"
                                                "print('n is', n, '; kernel:', 'ipykernel' in sys.modules)")
    out = tmp_path / "out.ipynb"
    execute_notebook(path, out, {"n": 7, "results_dir": "r"}, executor="plain")
    nb = json.loads(out.read_text())
    tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
    assert tags.index(["injected-parameters"]) == tags.index(["parameters"]) + 1
    outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("n is 7 ; kernel: False" in o.get("text", "") for o in outs)
    assert any(o.get("data", {}).get("text/plain") == "70" for o in outs)


def test_plain_executor_stores_figures_as_display_data(tmp_path):
    pytest.importorskip("plotly")
    body = ("import plotly.graph_objects as go\nfrom snnkit import viz\nviz.setup_notebook()\n"
            "go.Figure(go.Bar(x=[1], y=[2])).show()\ndisplay('shown')\nprint('after')")
    path = make_notebook(tmp_path / "nbs", body=body)
    out = tmp_path / "out.ipynb"
    execute_notebook(path, out, {"results_dir": None}, executor="plain")
    outs = json.loads(out.read_text())["cells"][3]["outputs"]
    kinds = [o["output_type"] for o in outs]
    assert kinds[0] == "stream" and outs[0]["text"] == "after\n"          # no figure printed as text
    data = [o["data"] for o in outs if o["output_type"] == "display_data"]
    assert any("application/vnd.plotly.v1+json" in d for d in data)
    assert data[-1]["text/plain"] == "'shown'"


def test_save_helpers(tmp_path):
    import plotly.graph_objects as go
    assert reproduce.save_metrics(None, a=1) is None and reproduce.save_figure(None, go.Figure(), "f") is None
    reproduce.save_metrics(tmp_path, a=1)
    p = reproduce.save_metrics(tmp_path, b=[1, 2], c="x")
    assert json.loads(p.read_text()) == {"a": 1, "b": [1, 2], "c": "x"}
    with pytest.raises(ValueError, match="metric 'd'"):
        reproduce.save_metrics(tmp_path, d=object())
    html = reproduce.save_figure(tmp_path, go.Figure(go.Bar(x=[1], y=[2])), "fig")
    assert html.name == "fig.html" and "plotly" in html.read_text()[:100000].lower()


def test_list_says_which_gpu_times_are_measured(tmp_path):
    reg = make_registry(tmp_path)
    rep = reproduce.get("tiny", reg)
    base = {"name": "tiny", "metrics": {"test_accuracy": 0.9}, "seconds": 12.5, "device": "GPU X (cupy)",
            "started_utc": "2026-12-02T11:00:00+00:00", "command": "snnkit reproduce tiny", "source": "recorded"}
    line = reproduce.gpu_time(rep, base)
    assert line.startswith("measured: 12.5 s on GPU X (cupy), 2026-12-02 (snnkit reproduce tiny")
    reduced = reproduce.gpu_time(rep, {**base, "reduced": {"epochs": "10 (registry: 100)"}})
    assert "reduced: epochs 10 (registry: 100)" in reduced and "registry: 1 s" in reduced
    stand_in = reproduce.gpu_time(rep, {**base, "dataset_stand_in": True})
    assert stand_in.startswith("estimated: 1 s") and "stand-in pipeline check" in stand_in
    assert reproduce.gpu_time(rep, None) == "estimated: 1 s"
    listing = reproduce.format_list([rep], tmp_path / "none", records={"tiny": base})
    assert "GPU time: measured: 12.5 s" in listing
    # the repository's own records: the BATS MNIST entries are measured on real data
    real = reproduce.format_list(reproduce.list_reproductions(), records=reproduce.recorded_results(
        tmp_path / "no-results"))
    for name in ("bats_mnist_single_spike", "bats_mnist_multi_spike", "stbp_resnet19_mnist"):
        block = real.split(name + "\n", 1)[1]
        assert block.split("GPU time: ", 1)[1].startswith("measured: "), name
