"""Twin pointers are checked, not trusted: every "twin"/"mirror(s)" pointer in kernels/*.cu(h) and
snnkit/**/*.py names a target that exists.

A pointer is the word twin/mirror followed (in the same sentence) by a path from the repository
root, ``snnkit/<...>.py`` or ``kernels/<...>.cu(h)``, optionally with the names it points at:
``path::name`` (a dotted name for a method: ``losses.py::SpikeCountLoss._numpy``) or
``path (name, name, ...)``. A Python target is imported and looked up; a CUDA target is found
in the file as a kernel (``name``, ``name_f32``, or a macro's ``name_##SFX``) or a function.
A bare ``file.py::name`` without its folder is rejected: it cannot be checked and goes stale.
Every .cu file has at least one pointer."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("kernels/*.cu"), *ROOT.glob("kernels/*.cuh"), *ROOT.glob("snnkit/**/*.py")])

WORD = re.compile(r"\b(twins?|mirror(?:s|ing|ed)?)\b", re.IGNORECASE)
NAMES = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
REF = re.compile(rf"((?:snnkit|kernels)/[\w/]+\.(?:py|cuh|cu))\b(?:::({NAMES})|\s*\(({NAMES}(?:,\s*{NAMES})*)\))?")
BARE = re.compile(rf"(?<![/\w])(\w+\.(?:py|cuh|cu))::({NAMES})")


def _flat(text: str) -> str:
    """The file as one line of prose: comment markers and line breaks dropped, so that a pointer
    broken over two comment lines reads as one."""
    return re.sub(r"\s*\n\s*(?://|#)?\s*", " ", text)


def pointers(text: str):
    """(reference, names) of every twin pointer in ``text``, and the bare ``file::name`` ones."""
    flat = _flat(text)
    refs, bare = [], []
    for m in WORD.finditer(flat):
        window = flat[m.end():m.end() + 200]
        window = re.split(r"(?<=[^.\w])\.\s|\.\s+[A-Z]|;", window, maxsplit=1)[0]   # the sentence
        for r in REF.finditer(window):
            names = [r.group(2)] if r.group(2) else [n.strip() for n in (r.group(3) or "").split(",") if n.strip()]
            refs.append((r.group(1), names))
        bare += [f"{b.group(1)}::{b.group(2)}" for b in BARE.finditer(window)]
    unique = list(dict.fromkeys((p, tuple(n)) for p, n in refs))     # overlapping sentences
    return [(p, list(n)) for p, n in unique], sorted(set(bare))


def missing(path: str, names) -> list[str]:
    """What a pointer names that does not exist ([] when it resolves)."""
    target = ROOT / path
    if not target.is_file():
        return [f"{path} (no such file)"]
    out = []
    if path.endswith(".py"):
        module = importlib.import_module(path[:-3].replace("/", "."))
        for name in names:
            obj = module
            for part in name.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    out.append(f"{path}::{name}")
                    break
    else:
        src = target.read_text()
        for name in names:
            if not re.search(rf"\b{re.escape(name)}(_##SFX|_f32|_f64)?\s*\(", src):
                out.append(f"{path}::{name}")
    return out


def _all():
    for src in SOURCES:
        refs, bare = pointers(src.read_text())
        yield src.relative_to(ROOT).as_posix(), refs, bare


def test_every_twin_pointer_resolves():
    broken, n = [], 0
    for src, refs, bare in _all():
        broken += [f"{src}: bare pointer {b} (write the path from the repository root)" for b in bare]
        for path, names in refs:
            n += 1 + len(names)
            broken += [f"{src}: {m}" for m in missing(path, names)]
    assert not broken, "stale twin pointers:\n" + "\n".join(broken)
    assert n > 40            # the parser sees the pointers (today ~60 targets)


@pytest.mark.parametrize("cu", sorted(ROOT.glob("kernels/*.cu")), ids=lambda p: p.name)
def test_every_kernel_file_points_at_its_twin(cu):
    refs, _ = pointers(cu.read_text())
    assert any(p.startswith("snnkit/") for p, _ in refs), f"{cu.name} has no twin pointer to snnkit/"


def test_surrogate_twins_point_at_each_other():
    """The issue's demo: the fast sigmoid is one NumPy function and one device function."""
    py, _ = pointers((ROOT / "snnkit/s3gd/neuron.py").read_text())
    cu, _ = pointers((ROOT / "kernels/s3gd_common.cuh").read_text())
    assert ("kernels/s3gd_common.cuh", ["s3gd_fast_sigmoid_grad"]) in py
    assert ("snnkit/s3gd/neuron.py", ["fast_sigmoid_grad"]) in cu


@pytest.mark.parametrize("text, why", [
    ("// Twin: snnkit/s3gd/backward.py::dense_delta", "no such file"),
    ("// Mirrors snnkit/s3gd/scan.py::scan line for line", "scan.py::scan"),
    ("# twin: kernels/s3gd_common.cuh::s3gd_no_such_device_function", "s3gd_no_such_device_function"),
    ("// Twins: snnkit/bats/backward.py (spike_factors, weight_gradient)", "weight_gradient"),
    ("// Twin of\n// snnkit/s3gd/lif.py::lif_simulat (over two lines)", "lif_simulat"),
    ("// twin: scan.py::scan_forward", "bare"),
])
def test_a_wrong_pointer_is_caught(text, why):
    """The checker fails on each kind of stale pointer (the two of issue 18 included)."""
    refs, bare = pointers(text)
    problems = [f"bare {b}" for b in bare] + [m for p, names in refs for m in missing(p, names)]
    assert problems and any(why in p for p in problems), (text, refs, bare, problems)


def test_right_pointers_pass():
    refs, bare = pointers("// Twin: snnkit/s3gd/scan.py::scan_forward, and (twin: snnkit/s3gd/loss.py::"
                          "ActivityRegularizer.grad_from_counts); mirrors kernels/s3gd_forward.cu::s3gd_lif_forward.")
    assert not bare and len(refs) == 3 and all(not missing(p, n) for p, n in refs), refs
