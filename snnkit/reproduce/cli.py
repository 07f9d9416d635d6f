"""Paper reproductions: ``snnkit reproduce NAME [-p key value ...]``.

    snnkit reproduce --list                    every entry: target, GPU time, notebook status
    snnkit reproduce NAME                      the registry's parameters (the paper's settings)
        -p KEY VALUE                           override a parameter; VALUE is a Python literal
                                               (1e-3, [0.5, 1], True, 'x') or else a plain string
        --stand-in                             dataset_stand_in=True (synthetic, labelled)
        --out DIR                              default results/NAME
        --executor auto|papermill|plain        see snnkit.notebook_run

Exit status: 0 (ran; the record is printed as JSON), 1 (a bad parameter, a missing notebook, a
failed notebook: the reason on stderr), 2 (no NAME).

How an entry can be rerun (:func:`rerun_hints`, shown by notebook 07) is derived from what its
notebook declares: a quick run only through a parameter it has (``QUICK``), ``--stand-in`` only
where it declares ``dataset_stand_in`` and reads a downloaded data set. The GPU time of ``--list``
(:func:`gpu_time`) is *measured* when a real-data record exists, else the registry's *estimate*.
"""
from __future__ import annotations

import argparse
import ast
import json
import shlex
import sys
from pathlib import Path

from ..notebook_run import EXECUTORS, NotebookFailed
from . import registry as _registry        # looked up at call time: tests point its paths elsewhere
from .contract import CONTRACT, declared_parameters, parameters_cell
from .registry import Reproduction
from .runner import run

# A quick first try overrides the first of these that the notebook declares (its own name for "less work").
QUICK = (("epochs", 1), ("conv_repeats", 10))


def parse_value(text: str):
    """``-p`` values: Python literals (1e-3, [0.5, 1], True, 'x') or, failing that, the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _declared(nb: Path) -> list[str]:
    return declared_parameters(parameters_cell(json.loads(nb.read_text()))[1])


def rerun_hints(rep: Reproduction, notebooks: Path | None = None) -> list[tuple[str, str]]:
    """How to rerun ``rep``, as (label, command) pairs, offering only what its notebook accepts:
    a quick run through a parameter its ``parameters`` cell declares (``QUICK``), and ``--stand-in``
    only where it declares ``dataset_stand_in`` and its data set is a real (downloaded) one.
    Empty for a planned entry or a notebook that does not exist (nothing can be rerun)."""
    nb = rep.notebook_path(notebooks)
    if rep.status == "planned" or nb is None:
        return []
    try:
        declared = set(_declared(nb))
    except (ValueError, KeyError, SyntaxError):
        return []
    if any(k not in declared for k in CONTRACT):
        return []
    hints = [("rerun", f"snnkit reproduce {rep.name}")]
    quick = next(((k, v) for k, v in QUICK if k in declared), None)
    if quick:
        hints.append(("quick", f"snnkit reproduce {rep.name} -p {quick[0]} {quick[1]!r}"))
    from ..datasets import REAL
    if "dataset_stand_in" in declared and rep.dataset in REAL:
        hints.append(("no data", f"snnkit reproduce {rep.name} --stand-in   (synthetic, labelled; tests the code only)"))
    return hints


def _fmt_target(t: dict) -> str:
    v = t.get("value")
    return f"{t.get('paper', '')}: {t.get('figure', '')}" + (f" = {v}{t.get('unit', '')}" if v is not None else "")


def gpu_time(rep: Reproduction, record: dict | None) -> str:
    """The GPU time line of ``--list``: *measured* when the repository holds a real-data record of
    the entry (its wall time, device, date and command, and what it ran with reduced settings; a run
    resumed across device sessions records its ``segments``, and its time is their sum),
    else the registry's *estimate*. A stand-in record is a pipeline check, not a measurement."""
    if record and not (record.get("dataset_stand_in") or record.get("metrics", {}).get("dataset_stand_in")):
        secs = record.get("seconds")
        line = (f"measured: {secs:g} s" if isinstance(secs, (int, float)) else "measured") + \
            (f" in {len(record['segments'])} device sessions, resumed from its checkpoints,"
             if record.get("segments") else "") + \
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
        records = _registry.recorded_results()
    lines = []
    for r in reps:
        nb = r.notebook_path(notebooks)
        status = nb.name if nb else f"{r.notebook} (not written yet)"
        if nb:
            try:
                declared = _declared(nb)
            except (ValueError, KeyError, SyntaxError) as e:
                declared, status = [], status + f" (parameters cell unreadable: {e})"
            if "results_dir" not in declared:
                status += " (does not declare results_dir yet: cannot be run as a reproduction)"
        if r.status == "planned":
            status += f"\n    PLANNED:  {r.needs}"
        caveat = (records.get(r.name) or {}).get("caveat")
        lines += [f"{r.name}", f"    {r.title}", f"    target:   {_fmt_target(r.target)}",
                  f"    GPU time: {gpu_time(r, records.get(r.name))}"] + \
            ([f"    caveat:   {caveat}"] if caveat else []) + [f"    notebook: {status}", ""]
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
    p.add_argument("--executor", default="auto", choices=EXECUTORS)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list:
        print(format_list(_registry.list_reproductions()))
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
