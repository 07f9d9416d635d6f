"""The notebooks are lessons (snnkit/lessons.py, snnkit/exercises/): each of 00-06 has exercises with
checks and hidden solutions, "Think!" questions with a discussion to reveal, and a summary. The
claims and solutions themselves are checked when the notebooks run (strict mode, test_notebooks.py);
this file checks the shape of each lesson and the check functions' three verdicts."""
import json
import re

import pytest

from snnkit import exercises, lessons
from snnkit.tour import notebook_paths

LESSONS = [p for p in notebook_paths() if int(p.name[:2]) <= 6]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(c):
    return "".join(c["source"])


def test_the_lessons_are_all_there():
    assert [p.name[:2] for p in LESSONS] == ["00", "01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_each_lesson_has_exercises_with_hidden_checked_solutions(path):
    cells = _cells(path)
    tags = lambda c: c.get("metadata", {}).get("tags", [])
    ex = [i for i, c in enumerate(cells) if "exercise" in tags(c)]
    assert len(ex) >= 2, f"{path.name}: {len(ex)} exercise cells (tag 'exercise'); a lesson has at least 2"
    for i in ex:
        src = _src(cells[i])
        assert cells[i]["cell_type"] == "code" and "..." in src, f"{path.name} cell {i}: an exercise leaves a `...`"
        check = re.search(r"check_\w+", src)
        assert check, f"{path.name} cell {i}: an exercise calls its snnkit.exercises.check_<name>"
        assert hasattr(exercises, check.group(0)), f"{check.group(0)} is not in snnkit.exercises"
        sol = [j for j in range(i + 1, len(cells)) if "solution" in tags(cells[j])]
        assert sol, f"{path.name} cell {i}: no solution cell (tag 'solution') after the exercise"
        s = cells[sol[0]]
        assert s.get("metadata", {}).get("jupyter", {}).get("source_hidden") is True, \
            f"{path.name} cell {sol[0]}: the solution is hidden by default (metadata jupyter.source_hidden)"
        assert check.group(0) in _src(s) and "..." not in _src(s).replace('"..."', ""), \
            f"{path.name} cell {sol[0]}: the solution runs the same check with a real answer"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_each_lesson_has_think_questions_and_a_summary(path):
    md = [_src(c) for c in _cells(path) if c["cell_type"] == "markdown"]
    think = [m for m in md if "Think!" in m]
    assert think, f"{path.name}: no 'Think!' question"
    assert all("<details>" in m for m in think), f"{path.name}: every Think! has a discussion in <details>"
    assert any(re.search(r"^#+ .*summary", m, re.I | re.M) for m in md), f"{path.name}: no '## Summary' section"


def test_verdicts(monkeypatch, capsys):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")
    assert exercises.verdict("q", ..., True, "r", "w") is None
    assert exercises.verdict("q", 1, True, "because", "w") is True
    assert exercises.verdict("q", 2, False, "r", "hint") is False
    out = capsys.readouterr().out
    assert "replace the `...`" in out and "✓ q: right. because" in out and "✗ q: not yet. hint" in out
    monkeypatch.setenv(lessons.STRICT_ENV, "1")
    with pytest.raises(exercises.ExerciseFailed, match="hint"):
        exercises.verdict("q", 2, False, "r", "hint")
    assert exercises.verdict("q", ..., False, "r", "w") is None      # a placeholder never fails


def test_claims(monkeypatch, capsys):
    monkeypatch.setenv(lessons.STRICT_ENV, "0")
    assert lessons.claim("a holds", 1 < 2, "1 < 2") is True
    assert lessons.claim("b holds", 2 < 1) is False
    out = capsys.readouterr().out
    assert "✓ claim: a holds (1 < 2)" in out and "✗ claim does NOT hold" in out
    monkeypatch.setenv(lessons.STRICT_ENV, "1")
    with pytest.raises(lessons.ClaimFailed):
        lessons.claim("b holds", False)
