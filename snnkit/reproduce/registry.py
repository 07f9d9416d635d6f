"""What is registered, and what is on record.

The registry ``reproductions/registry.json`` is ``{"reproductions": [entry, ...]}``; an entry is

    name                unique; the argument of ``snnkit reproduce NAME``
    title               one line
    notebook            a glob under notebooks/ (e.g. "02_*.ipynb"), so renaming a notebook's
                        title does not break the registry
    parameters          the paper's settings, injected into the notebook's ``parameters`` cell
    target              the paper's figure or number: {paper, figure, metric, value, unit}; ``metric``
                        is the key of metrics.json it is compared with
    expected_gpu_time   how long the full run takes on one GPU (measured or estimated, said which)
    dataset, notes      optional
    status, needs       "ready" (default) or "planned", with what its notebook still needs
    anything else       kept in ``Reproduction.extra`` (e.g. ``sweep``: :mod:`snnkit.sweep`)

A record is the ``run.json`` of a run (written by :func:`snnkit.reproduce.runner.run`): at least
``name`` and ``metrics``, and ``started_utc``, ``seconds``, ``device``, ``command``,
``dataset_stand_in``. Records are read from ``results/NAME*/run.json`` (this machine's runs) and
``reproductions/recorded/NAME.json`` (kept in the repository); :func:`recorded_results` keeps one a
reproduction, a fresh run before the repository's copy, the newest of several runs.

The comparison with the paper (:func:`comparison`) puts one row per entry; a number of ours stands
beside the paper's only when it was measured on the real data set (:func:`paper_comparable`); a
stand-in run only shows that the pipeline runs (:func:`pipeline_checks`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REGISTRY = ROOT / "reproductions" / "registry.json"
RECORDED = ROOT / "reproductions" / "recorded"
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "results"

_REQUIRED = ("name", "title", "notebook", "parameters", "target", "expected_gpu_time")


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
        missing = [k for k in _REQUIRED if k not in e]
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
            # what a reader must know before comparing (e.g. a record made before a correction of the code)
            "caveat": rec.get("caveat", "") if rec else "",
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
