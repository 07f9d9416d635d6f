"""The contract between ``snnkit reproduce`` and a reproduction notebook.

The notebook's side::

    # cell tagged "parameters"
    results_dir = None            # required (CONTRACT): where metrics.json and figures go
    dataset_stand_in = False      # optional: may run on the synthetic stand-in of its data set
    epochs = 20                   # its own settings, each a plain literal

    ...
    save_metrics(results_dir, test_accuracy=acc)      # metrics.json: a flat JSON object
    save_figure(results_dir, fig, "curves")           # curves.html: standalone, plotly.js inside

Both helpers do nothing when ``results_dir`` is None, i.e. when the notebook runs as a lesson.

The runner's side, before anything runs (:func:`check_parameters`): every injected name is
declared at the top level of the parameters cell (a typo would otherwise be injected and ignored),
the cell declares ``CONTRACT``, ``dataset_stand_in=True`` only where the cell declares it, and an
injected value has the kind of the declared default (:func:`check_parameter_types`: ``-p epochs abc``
for ``epochs = 20`` is an error; an int is accepted for a float; a default of None or of a
non-literal accepts anything).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

CONTRACT = ("results_dir",)


# ------------------------------------------------------------------ the notebook's helpers
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


# ------------------------------------------------------------------ reading the parameters cell
def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


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


# ------------------------------------------------------------------ checking what is injected
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
                         f"(missing {missing_contract}); see snnkit/reproduce/contract.py.")
    if params.get("dataset_stand_in") and "dataset_stand_in" not in declared:
        raise ValueError(f"{where}: does not declare dataset_stand_in, so it cannot run on a synthetic stand-in; "
                         "run it on the real data set, or add the parameter to the notebook.")
    unknown = sorted(set(params) - declared)
    if unknown:
        raise ValueError(f"{where}: parameter(s) {unknown} are not declared in its parameters cell "
                         f"(declared: {sorted(declared)}). Fix the name or the registry entry.")
    check_parameter_types(src, params, where)
