import subprocess
import sys

import pytest


def _snnkit(*args, **env):
    import os
    return subprocess.run([sys.executable, "-m", "snnkit.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_info_reports_backend_and_reason():
    r = _snnkit("info")
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout and "why" in r.stdout and "numpy" in r.stdout


def test_info_numpy_forced():
    r = _snnkit("info", SNNKIT_BACKEND="numpy")
    assert "SNNKIT_BACKEND=numpy" in r.stdout


def test_unknown_bench_lists_available():
    r = _snnkit("bench", "nope")
    assert r.returncode == 2 and "no benchmark" in r.stderr


@pytest.mark.slow
def test_tour_runs_one_notebook(tmp_path):
    r = _snnkit("tour", "--out", str(tmp_path), "--only", "00_")
    assert r.returncode == 0, r.stdout + r.stderr
    page = (tmp_path / "index.html").read_text()
    assert "00_welcome.html" in page
    html = (tmp_path / "00_welcome.html").read_text()
    assert "plotly" in html.lower() and len(html) > 100_000     # plotly.js embedded: works offline
