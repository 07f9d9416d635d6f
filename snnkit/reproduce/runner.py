"""Running one reproduction: ``run(NAME, parameters) -> record``.

    parameters  = registry entry's parameters, updated by the caller's, plus results_dir
    checked     against the notebook's parameters cell (:mod:`.contract`) before anything is written
    folder      results/NAME, or a new sibling results/NAME-<UTC time> when it holds a previous run
                (nothing a run wrote is ever deleted or overwritten)
    executed    by :func:`snnkit.notebook_run.execute_notebook` (papermill, or its plain fallback
                where papermill is missing, as on a bare GPU machine), with lesson claims lenient:
                a reproduction is judged by its paper target, not by claims made for CPU defaults
    collected   folder/NAME.ipynb (executed), metrics.json (the notebook's numbers; a run that
                writes none failed), NAME.html (the executed notebook as one page, when nbconvert
                is present), run.json (the record below)

The record (``run.json``; notebook 07 and the registry's readers rely on these keys)::

    name, title, notebook, parameters, dataset_stand_in, started_utc, seconds, device, executor,
    command, metrics, target, html, files

``dataset_stand_in=True`` is never implied: it is passed only when asked, the runner prints a
warning, and both metrics.json and run.json carry ``"dataset_stand_in": true``.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import notebook_run
from ..notebook_run import NotebookFailed
from . import registry as _registry        # looked up at call time: tests point its paths elsewhere
from .contract import check_parameters


def _device() -> str:
    try:
        from .. import backend
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
    rep = _registry.get(name, registry)
    if rep.status == "planned":
        raise ValueError(f"reproduction {name!r} is planned, not runnable yet: {rep.needs}")
    nb_path = rep.notebook_path(notebooks)
    if nb_path is None:
        raise FileNotFoundError(f"reproduction {name!r} needs notebooks/{rep.notebook}, which does not exist "
                                "yet (its method has not landed).")
    used = notebook_run.resolve_executor(executor)
    # Everything is checked before the output folder is touched, and a previous result is never
    # deleted or overwritten: a folder that already holds one gets a new run folder beside it.
    want_dir = Path(out_dir or _registry.RESULTS / name).resolve()
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
    try:
        notebook_run.execute_notebook(nb_path, out_nb, merged, progress=progress, strict_claims=False,
                                      executor=used)
    except NotebookFailed as e:
        raise NotebookFailed(f"{nb_path.name} failed under {used}: {e.reason} (executed notebook with the "
                             f"error: {out_nb})", e.reason, e.executed) from e
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
        if export_html and notebook_run.installed("nbconvert"):
            html = notebook_run.export_html(out_nb, out_nb.with_suffix(".html"), assets="embedded")
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
