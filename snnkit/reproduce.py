"""Paper reproductions: ``snnkit reproduce NAME [-p key value ...]``.

A reproduction is one of the teaching notebooks run with its full (GPU) parameters. The registry
``reproductions/registry.json`` maps each name to

    notebook            a glob under notebooks/ (e.g. "02_*.ipynb"), so renaming a notebook's
                        title does not break the registry
    parameters          the paper's settings, injected into the notebook's ``parameters`` cell
    target              the paper's figure or number, and the metric key it is compared with
    expected_gpu_time   how long the full run takes on one GPU (measured or estimated, said which)

The contract with a reproduction notebook: its ``parameters`` cell declares ``results_dir`` (plus
its own settings, and ``dataset_stand_in`` if it can run on a stand-in); it writes ``metrics.json``
(a flat JSON object of numbers and strings) and any HTML figures into ``results_dir`` — in a
notebook, ``save_metrics(results_dir, test_accuracy=...)`` and ``save_figure(results_dir, fig,
"name")``, which do nothing when the notebook runs as a lesson (``results_dir = None``). The runner

1. checks that every parameter it injects is declared in that cell (a typo would otherwise be
   injected silently and ignored),
2. executes the notebook with papermill (progress bar per cell), or — where papermill is not
   installed, as on a bare GPU machine — with a small built-in executor that runs the code cells
   in order and stores their printed output,
3. collects ``results/NAME/``: the executed notebook, ``metrics.json``, the notebook as HTML when
   nbconvert is present, and ``run.json`` (parameters, wall time, device, command, metrics, target).

``rerun_hints(rep)`` gives the "how to rerun" commands of an entry (notebook 07 shows them), derived
from what its notebook declares: a quick run only through a parameter it has, ``--stand-in`` only
where it declares ``dataset_stand_in`` and reads a downloaded data set.

``dataset_stand_in=True`` asks the notebook to use the same-shaped synthetic stand-in of its data
set (``snnkit.datasets.load(..., stand_in=True)``) where the real files cannot be had. It is never
implied: the runner passes it only when asked, prints a warning, and labels ``metrics.json`` and
``run.json`` with ``"dataset_stand_in": true``.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "reproductions" / "registry.json"
RECORDED = ROOT / "reproductions" / "recorded"
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "results"
CONTRACT = ("results_dir",)


@dataclass
class Reproduction:
    name: str
    title: str
    notebook: str
    parameters: dict
    target: dict
    expected_gpu_time: str
    dataset: str = ""
    notes: str = ""
    status: str = "ready"              # "planned": the notebook cannot run it yet (``needs`` says why)
    needs: str = ""
    extra: dict = field(default_factory=dict)

    def notebook_path(self, folder: Path | None = None) -> Path | None:
        hits = sorted(Path(folder or NOTEBOOKS).glob(self.notebook))
        return hits[0] if hits else None


def load_registry(path: Path | None = None) -> list[Reproduction]:
    path = Path(path or REGISTRY)
    raw = json.loads(path.read_text())
    out, seen = [], set()
    for i, e in enumerate(raw["reproductions"]):
        missing = [k for k in ("name", "title", "notebook", "parameters", "target", "expected_gpu_time") if k not in e]
        if missing:
            raise ValueError(f"{path}: entry {i} lacks {missing}")
        if e["name"] in seen:
            raise ValueError(f"{path}: reproduction {e['name']!r} is listed twice")
        seen.add(e["name"])
        known = {k: e.pop(k) for k in list(e) if k in Reproduction.__dataclass_fields__}
        out.append(Reproduction(**known, extra=e))
    return out


def list_reproductions(registry: Path | None = None) -> list[Reproduction]:
    """Every registered reproduction (works whether or not its notebook exists yet)."""
    return load_registry(registry)


def get(name: str, registry: Path | None = None) -> Reproduction:
    reps = {r.name: r for r in load_registry(registry)}
    if name not in reps:
        raise ValueError(f"unknown reproduction {name!r}; `snnkit reproduce --list` shows: {', '.join(reps)}")
    return reps[name]


# ------------------------------------------------------------------ for the notebooks
def save_metrics(results_dir, **metrics) -> Path | None:
    """What a reproduction notebook calls at its end: ``save_metrics(results_dir, test_accuracy=98.4)``.
    Writes (merging with earlier calls) ``results_dir/metrics.json``; does nothing when
    ``results_dir`` is None, i.e. when the notebook runs as a lesson rather than a reproduction."""
    if results_dir is None:
        return None
    path = Path(results_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    for k, v in metrics.items():
        if hasattr(v, "item"):                       # NumPy / CuPy scalars
            v = v.item()
        if not isinstance(v, (int, float, str, bool, list, type(None))):
            raise ValueError(f"metric {k!r} must be a number, string, bool or list, got {type(v).__name__}")
        old[k] = v
    tmp = path.with_name("metrics.json.part")
    tmp.write_text(json.dumps(old, indent=1))
    tmp.replace(path)
    return path


def save_figure(results_dir, fig, name: str) -> Path | None:
    """Save a plotly figure as standalone HTML (plotly.js embedded: opens offline) into
    ``results_dir``; nothing when ``results_dir`` is None."""
    if results_dir is None:
        return None
    path = Path(results_dir) / f"{name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


# ------------------------------------------------------------------ parameters
def parse_value(text: str):
    """``-p`` values: Python literals (1e-3, [0.5, 1], True, 'x') or, failing that, the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parameters_cell(nb: dict) -> tuple[int, str]:
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", []):
            return i, _src(c)
    raise ValueError("the notebook has no cell tagged 'parameters'")


def declared_parameters(source: str) -> list[str]:
    """Names assigned at the top level of a parameters cell."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.append(n.id)
    return names


_UNKNOWN = object()


def declared_defaults(source: str) -> dict:
    """{name: default} of a parameters cell, for names assigned a plain literal (others: unknown)."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    try:
                        out[t.id] = ast.literal_eval(node.value)
                    except (ValueError, SyntaxError):
                        out[t.id] = _UNKNOWN
    return out


def _kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, dict):
        return "dict"
    return type(v).__name__


# a value of the kind on the right is accepted for a default of the kind on the left
_COMPATIBLE = {"float": {"float", "int"}, "int": {"int"}, "bool": {"bool"}, "str": {"str"},
               "list": {"list"}, "dict": {"dict"}}


def check_parameter_types(source: str, params: dict, where: str) -> None:
    """ValueError when an injected value's kind differs from the declared default's (``-p epochs abc``
    for ``epochs = 20``); defaults of None or a non-literal accept anything."""
    defaults = declared_defaults(source)
    for k, v in params.items():
        d = defaults.get(k, _UNKNOWN)
        if d is _UNKNOWN or d is None or v is None:
            continue
        want, got = _kind(d), _kind(v)
        if want in _COMPATIBLE and got not in _COMPATIBLE[want]:
            a = "an" if want[0] in "aeiou" else "a"
            raise ValueError(f"{where}: parameter {k!r} has {a} {want} default ({k} = {d!r} in its parameters cell); "
                             f"got the {got} {v!r}. Pass a {want}, e.g. -p {k} {d!r}.")


def check_parameters(nb: dict, params: dict, where: str) -> None:
    _, src = parameters_cell(nb)
    declared = set(declared_parameters(src))
    missing_contract = [k for k in CONTRACT if k not in declared]
    if missing_contract:
        raise ValueError(f"{where}: its parameters cell must declare {list(CONTRACT)} to be a reproduction "
                         f"(missing {missing_contract}); see snnkit/reproduce.py.")
    if params.get("dataset_stand_in") and "dataset_stand_in" not in declared:
        raise ValueError(f"{where}: does not declare dataset_stand_in, so it cannot run on a synthetic stand-in; "
                         "run it on the real data set, or add the parameter to the notebook.")
    unknown = sorted(set(params) - declared)
    if unknown:
        raise ValueError(f"{where}: parameter(s) {unknown} are not declared in its parameters cell "
                         f"(declared: {sorted(declared)}). Fix the name or the registry entry.")
    check_parameter_types(src, params, where)


# ------------------------------------------------------------------ executing
def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _injected_cell(params: dict) -> dict:
    lines = ["# Parameters injected by snnkit reproduce"] + [f"{k} = {v!r}" for k, v in params.items()]
    return {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
            "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": "\n".join(lines) + "\n"}


def _strip_magics(source: str) -> str:
    """IPython magics and shell lines have no meaning outside IPython: replace them by ``pass``."""
    out = []
    for line in source.splitlines():
        s = line.lstrip()
        out.append(line[:len(line) - len(s)] + "pass  # " + s if s.startswith(("%", "!")) else line)
    return "\n".join(out)


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def _mime_bundle(obj, raw=False) -> dict:
    """What Jupyter would store for ``display(obj)``: its MIME bundle, or at least its repr."""
    if raw and isinstance(obj, dict):
        return obj
    for method in ("_repr_mimebundle_",):
        if hasattr(obj, method):
            try:
                got = getattr(obj, method)()
                bundle = got[0] if isinstance(got, tuple) else got
                if isinstance(bundle, dict) and bundle:
                    return bundle
            except Exception:
                pass
    bundle = {"text/plain": repr(obj)}
    if hasattr(obj, "_repr_html_"):
        try:
            bundle["text/html"] = obj._repr_html_()
        except Exception:
            pass
    return bundle


@contextlib.contextmanager
def _capture_display(outputs: list):
    """Route ``display(...)`` (plotly's ``fig.show()`` calls it) into ``outputs`` as display_data,
    as a Jupyter kernel would, instead of printing whole figures as text."""
    def display(*objs, raw=False, **kw):
        for o in objs:
            outputs.append({"output_type": "display_data", "metadata": {}, "data": _mime_bundle(o, raw)})
    import importlib
    patched = []
    for name in ("IPython.display", "IPython.core.display_functions", "IPython.core.display"):
        try:
            mod = importlib.import_module(name)          # display_html & co. call the module's display
        except ImportError:
            continue
        if hasattr(mod, "display"):
            patched.append((mod, mod.display))
            mod.display = display
    try:
        yield display
    finally:
        for mod, old in patched:
            mod.display = old


def execute_plain(nb: dict, params: dict, cwd: Path, progress: bool = True) -> dict:
    """Run the code cells of ``nb`` in one namespace, in order, without Jupyter. Printed output is
    stored in each cell; the value of a last bare expression becomes its ``execute_result``."""
    import os
    i_par, _ = parameters_cell(nb)
    nb = json.loads(json.dumps(nb))
    nb["cells"].insert(i_par + 1, _injected_cell(params))
    ns = {"__name__": "__main__"}
    if str(ROOT) not in sys.path:              # a relative PYTHONPATH=. breaks once we chdir below
        sys.path.insert(0, str(ROOT))
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for k, cell in enumerate(code_cells):
            if progress:
                print(f"[reproduce] cell {k + 1}/{len(code_cells)}", file=sys.stderr, flush=True)
            buf = io.StringIO()
            tree = ast.parse(_strip_magics(_src(cell)))
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            shown = []
            try:
                with contextlib.redirect_stdout(_Tee(buf, sys.stderr) if progress else buf), \
                        _capture_display(shown) as display:
                    ns["display"] = display
                    exec(compile(tree, f"<cell {k + 1}>", "exec"), ns)
                    value = eval(compile(ast.Expression(last.value), f"<cell {k + 1}>", "eval"), ns) if last else None
            except Exception as e:
                cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": buf.getvalue()}] + shown + [
                    {"output_type": "error", "ename": type(e).__name__, "evalue": str(e),
                     "traceback": traceback.format_exc().splitlines()}]
                raise NotebookFailed(f"cell {k + 1} raised {type(e).__name__}: {e}", nb) from e
            cell["outputs"] = ([{"output_type": "stream", "name": "stdout", "text": buf.getvalue()}]
                               if buf.getvalue() else []) + shown
            if value is not None:
                cell["outputs"].append({"output_type": "execute_result", "execution_count": k + 1,
                                        "metadata": {}, "data": _mime_bundle(value)})
            cell["execution_count"] = k + 1
    finally:
        os.chdir(old)
    return nb


class NotebookFailed(RuntimeError):
    def __init__(self, msg, nb=None):
        super().__init__(msg)
        self.nb = nb


def _have(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def execute(nb_path: Path, out_nb: Path, params: dict, executor: str = "auto", progress: bool = True) -> str:
    """Execute ``nb_path`` with ``params`` into ``out_nb``; returns the executor used.

    A reproduction is judged by its paper target, not by the lesson's claims, which are made for
    the notebook's CPU defaults: claims print their verdict (snnkit.lessons) but never stop the run."""
    import contextlib
    import os
    from .lessons import STRICT_ENV

    @contextlib.contextmanager
    def lenient_claims():
        old = os.environ.get(STRICT_ENV)
        os.environ[STRICT_ENV] = "0"           # the papermill kernel inherits it; the plain executor reads it
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(STRICT_ENV, None)
            else:
                os.environ[STRICT_ENV] = old

    with lenient_claims():
        return _execute(nb_path, out_nb, params, executor, progress)


def _execute(nb_path: Path, out_nb: Path, params: dict, executor: str, progress: bool) -> str:
    if executor == "auto":
        executor = "papermill" if _have("papermill") else "plain"
    if executor == "papermill":
        import papermill as pm
        try:
            pm.execute_notebook(str(nb_path), str(out_nb), parameters=params, cwd=str(nb_path.parent),
                                kernel_name="python3", progress_bar=progress)
        except Exception as e:
            raise NotebookFailed(f"{nb_path.name} failed under papermill: {type(e).__name__}: "
                                 f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''} "
                                 f"(executed notebook with the error: {out_nb})") from e
    elif executor == "plain":
        nb = json.loads(nb_path.read_text())
        try:
            nb = execute_plain(nb, params, nb_path.parent, progress)
        except NotebookFailed as e:
            out_nb.write_text(json.dumps(e.nb, indent=1))
            raise NotebookFailed(f"{nb_path.name}: {e} (executed notebook with the error: {out_nb})") from e
        out_nb.write_text(json.dumps(nb, indent=1))
    else:
        raise ValueError(f"executor must be 'auto', 'papermill' or 'plain', got {executor!r}")
    return executor


def _export_html(out_nb: Path) -> Path | None:
    if not _have("nbconvert"):
        return None
    import nbformat
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(str(out_nb), as_version=4))
    html = out_nb.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def _device() -> str:
    try:
        from . import backend
        inf = backend.info()
        return f"{inf['device']} ({inf['backend']})"
    except Exception as e:           # the record should still be written
        return f"unknown ({type(e).__name__})"


def run(name: str, params: dict | None = None, out_dir: Path | str | None = None, *,
        registry: Path | None = None, notebooks: Path | None = None, executor: str = "auto",
        progress: bool = True, command: str | None = None, export_html: bool = True) -> dict:
    """Run reproduction ``name`` with the registry's parameters updated by ``params``; returns the
    run record (also written to ``out_dir/run.json``). ``export_html=False`` skips the HTML copy of the
    executed notebook (a sweep's many points keep the notebooks themselves)."""
    rep = get(name, registry)
    if rep.status == "planned":
        raise ValueError(f"reproduction {name!r} is planned, not runnable yet: {rep.needs}")
    nb_path = rep.notebook_path(notebooks)
    if nb_path is None:
        raise FileNotFoundError(f"reproduction {name!r} needs notebooks/{rep.notebook}, which does not exist "
                                "yet (its method has not landed).")
    # Everything is checked before the output folder is touched, and a previous result is never
    # deleted or overwritten: a folder that already holds one gets a new run folder beside it.
    want_dir = Path(out_dir or RESULTS / name).resolve()
    merged = {**rep.parameters, **(params or {}), "results_dir": str(want_dir)}
    nb = json.loads(nb_path.read_text())
    check_parameters(nb, merged, str(nb_path))
    out_dir = new_run_folder(want_dir)
    merged["results_dir"] = str(out_dir)
    if out_dir != want_dir:
        print(f"[reproduce] {want_dir} holds a previous result (kept); this run goes to {out_dir}",
              file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    stand_in = bool(merged.get("dataset_stand_in", False))
    if stand_in:
        print(f"[reproduce] WARNING: {name} runs on a SYNTHETIC STAND-IN of {rep.dataset or 'its data set'}; "
              "its numbers test the code, not the paper's claim.", file=sys.stderr)
    print(f"[reproduce] {name}: {nb_path.name} -> {out_dir}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out_nb = out_dir / f"{name}.ipynb"
    used = execute(nb_path, out_nb, merged, executor, progress)
    seconds = time.perf_counter() - t0
    if not metrics_path.exists():
        raise NotebookFailed(f"{nb_path.name} finished but wrote no metrics.json into results_dir ({out_dir}); "
                             "a reproduction notebook must write its numbers there.")
    metrics = json.loads(metrics_path.read_text())
    if not isinstance(metrics, dict):
        raise NotebookFailed(f"{metrics_path} must hold a JSON object, got {type(metrics).__name__}")
    if stand_in and metrics.get("dataset_stand_in") is not True:
        metrics["dataset_stand_in"] = True            # the label travels with the numbers
        metrics_path.write_text(json.dumps(metrics, indent=1))
    html = None
    try:
        html = _export_html(out_nb) if export_html else None
    except Exception as e:                            # HTML is a convenience; the run itself succeeded
        print(f"[reproduce] HTML export failed: {type(e).__name__}: {e}", file=sys.stderr)
    record = {
        "name": name, "title": rep.title, "notebook": nb_path.name,
        "parameters": merged, "dataset_stand_in": stand_in, "started_utc": started,
        "seconds": round(seconds, 1), "device": _device(), "executor": used,
        "command": command or "snnkit reproduce " + name + "".join(
            f" -p {k} {shlex.quote(repr(v))}" for k, v in (params or {}).items()),
        "metrics": metrics, "target": rep.target, "html": html.name if html else None,
        "files": sorted({p.name for p in out_dir.iterdir()} | {"run.json"}),
    }
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))
    print(f"[reproduce] {name}: done in {seconds:.1f} s; metrics {json.dumps(metrics)}", file=sys.stderr)
    return record


def new_run_folder(want: Path) -> Path:
    """``want`` when it does not exist or is an empty folder; otherwise a new sibling
    ``<want>-<UTC time>[-n]`` (a previous run's files are never deleted or overwritten). A path that
    is a file is an error."""
    if want.exists() and not want.is_dir():
        raise ValueError(f"--out {want} is a file; give a folder (it is created if missing)")
    if not want.exists() or not any(want.iterdir()):
        return want
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    cand, n = want.with_name(f"{want.name}-{stamp}"), 2
    while cand.exists():
        cand, n = want.with_name(f"{want.name}-{stamp}-{n}"), n + 1
    return cand


# ------------------------------------------------------------------ reading results back
def recorded_results(results: Path | None = None, recorded: Path | None = None) -> dict:
    """Latest known result per reproduction: ``results/NAME/run.json`` when present, else the
    record kept in the repository (``reproductions/recorded/NAME.json``), tagged by ``source``."""
    out = {}
    for folder, source in ((Path(recorded or RECORDED), "recorded in the repository"),
                           (Path(results or RESULTS), "results/")):
        if not folder.exists():
            continue
        for p in sorted(folder.glob("*.json")) + sorted(folder.glob("*/run.json")):
            try:
                rec = json.loads(p.read_text())
            except ValueError:
                continue
            if isinstance(rec, dict) and "name" in rec and "metrics" in rec:
                old = out.get(rec["name"])
                # several runs of one reproduction (a rerun never overwrites the last): the newest wins
                if (old is not None and old["source"] == source
                        and str(old.get("started_utc") or "") > str(rec.get("started_utc") or "")):
                    continue
                out[rec["name"]] = {**rec, "source": source, "path": str(p)}
    return out


def comparison(reps=None, results: dict | None = None) -> list[dict]:
    """One row per reproduction: the paper's number next to ours (None where not run yet), with
    where ours comes from (date, device, command, stand-in or not)."""
    reps = list_reproductions() if reps is None else reps
    results = recorded_results() if results is None else results
    rows = []
    for r in reps:
        rec = results.get(r.name)
        ours = rec["metrics"].get(r.target["metric"]) if rec else None
        rows.append({
            "name": r.name, "title": r.title, "metric": r.target["metric"], "unit": r.target.get("unit", ""),
            "paper": r.target.get("value"), "paper_figure": r.target.get("figure", ""), "ours": ours,
            "source": rec["source"] if rec else "not run yet", "recorded": rec is not None,
            "date": (rec.get("started_utc") or "")[:10] if rec else "",
            "device": rec.get("device", "") if rec else "", "command": rec.get("command", "") if rec else "",
            "seconds": rec.get("seconds") if rec else None,
            "dataset_stand_in": bool(rec and (rec.get("dataset_stand_in") or rec["metrics"].get("dataset_stand_in"))),
            "expected_gpu_time": r.expected_gpu_time,
        })
    return rows


def paper_comparable(rows) -> list[dict]:
    """The rows of :func:`comparison` whose number of ours may stand beside the paper's: a result on
    record, measured on the real data set. Nothing measured on a synthetic stand-in is ever in here."""
    return [r for r in rows if r["ours"] is not None and not r["dataset_stand_in"]]


def pipeline_checks(rows) -> list[dict]:
    """The rows of :func:`comparison` whose result on record ran on a synthetic stand-in: they show
    that the pipeline runs end to end (and how long it takes), never how the paper's claim fares."""
    return [r for r in rows if r.get("recorded", r["ours"] is not None) and r["dataset_stand_in"]]


# A quick first try overrides the first of these that the notebook declares (its own name for "less work").
QUICK = (("epochs", 1), ("conv_repeats", 10))


def rerun_hints(rep: Reproduction, notebooks: Path | None = None) -> list[tuple[str, str]]:
    """How to rerun ``rep``, as (label, command) pairs, offering only what its notebook accepts:
    a quick run through a parameter its ``parameters`` cell declares (``QUICK``), and ``--stand-in``
    only where it declares ``dataset_stand_in`` and its data set is a real (downloaded) one.
    Empty for a planned entry or a notebook that does not exist (nothing can be rerun)."""
    nb = rep.notebook_path(notebooks)
    if rep.status == "planned" or nb is None:
        return []
    try:
        declared = set(declared_parameters(parameters_cell(json.loads(nb.read_text()))[1]))
    except (ValueError, KeyError, SyntaxError):
        return []
    if any(k not in declared for k in CONTRACT):
        return []
    hints = [("rerun", f"snnkit reproduce {rep.name}")]
    quick = next(((k, v) for k, v in QUICK if k in declared), None)
    if quick:
        hints.append(("quick", f"snnkit reproduce {rep.name} -p {quick[0]} {quick[1]!r}"))
    from .datasets import REAL
    if "dataset_stand_in" in declared and rep.dataset in REAL:
        hints.append(("no data", f"snnkit reproduce {rep.name} --stand-in   (synthetic, labelled; tests the code only)"))
    return hints


def _fmt_target(t: dict) -> str:
    v = t.get("value")
    return f"{t.get('paper', '')}: {t.get('figure', '')}" + (f" = {v}{t.get('unit', '')}" if v is not None else "")


def gpu_time(rep: Reproduction, record: dict | None) -> str:
    """The GPU time line of ``--list``: *measured* when the repository holds a real-data record of
    the entry (its wall time, device, date and command, and what it ran with reduced settings),
    else the registry's *estimate*. A stand-in record is a pipeline check, not a measurement."""
    if record and not (record.get("dataset_stand_in") or record.get("metrics", {}).get("dataset_stand_in")):
        secs = record.get("seconds")
        line = (f"measured: {secs:g} s" if isinstance(secs, (int, float)) else "measured") + \
            f" on {record.get('device', '?')}, {(record.get('started_utc') or '')[:10]}" + \
            f" ({record.get('command', '')}; {record.get('source', 'recorded')})"
        reduced = record.get("reduced")
        if reduced:
            line += "; reduced: " + "; ".join(f"{k} {v}" for k, v in reduced.items())
            line += f"\n              registry: {rep.expected_gpu_time}"
        return line
    if rep.expected_gpu_time.lower().startswith("measured"):
        return rep.expected_gpu_time          # measured, but its record is not in the repository
    note = " (a stand-in pipeline check is recorded, not a measurement)" if record else ""
    text = rep.expected_gpu_time
    return (text if text.lower().startswith("estimate") else f"estimated: {text}") + note


def format_list(reps, notebooks: Path | None = None, records: dict | None = None) -> str:
    """``records``: {name: record} (default: ``recorded_results()``: results/ and reproductions/recorded/)."""
    if records is None:
        records = recorded_results()
    lines = []
    for r in reps:
        nb = r.notebook_path(notebooks)
        status = nb.name if nb else f"{r.notebook} (not written yet)"
        if nb:
            try:
                declared = declared_parameters(parameters_cell(json.loads(nb.read_text()))[1])
            except (ValueError, KeyError, SyntaxError) as e:
                declared, status = [], status + f" (parameters cell unreadable: {e})"
            if "results_dir" not in declared:
                status += " (does not declare results_dir yet: cannot be run as a reproduction)"
        if r.status == "planned":
            status += f"\n    PLANNED:  {r.needs}"
        lines += [f"{r.name}", f"    {r.title}", f"    target:   {_fmt_target(r.target)}",
                  f"    GPU time: {gpu_time(r, records.get(r.name))}", f"    notebook: {status}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="snnkit reproduce", description=__doc__.split("\n\n")[0],
                                epilog="example: snnkit reproduce bats_mnist_multi_spike -p epochs 10")
    p.add_argument("name", nargs="?", help="reproduction to run (see --list)")
    p.add_argument("--list", action="store_true", help="list reproductions, their targets and GPU times")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a notebook parameter (value parsed as a Python literal)")
    p.add_argument("--stand-in", action="store_true",
                   help="use the synthetic stand-in of the data set (sets dataset_stand_in=True); labelled")
    p.add_argument("--out", help="output folder (default results/NAME)")
    p.add_argument("--executor", default="auto", choices=("auto", "papermill", "plain"))
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list:
        print(format_list(list_reproductions()))
        return 0
    if not args.name:
        p.print_usage(sys.stderr)
        print("give a reproduction NAME or --list", file=sys.stderr)
        return 2
    params = {k: parse_value(v) for k, v in args.parameter}
    if args.stand_in:
        params["dataset_stand_in"] = True
    command = "snnkit reproduce " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        rec = run(args.name, params, args.out, executor=args.executor, command=command)
    except (ValueError, FileNotFoundError, NotebookFailed) as e:
        print(f"[reproduce] {e}", file=sys.stderr)
        return 1
    print(json.dumps({"name": rec["name"], "seconds": rec["seconds"], "device": rec["device"],
                      "dataset_stand_in": rec["dataset_stand_in"], "metrics": rec["metrics"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
