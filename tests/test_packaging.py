"""pyproject.toml and environment.yml must list the same dependencies with the same pins, and a
wheel must carry the CUDA sources."""
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    req = req.strip().lower().replace("_", "-")
    return re.sub(r"\s+", "", req)


def _pyproject_deps():
    d = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(d["dependencies"])
    for extra in d["optional-dependencies"].values():
        deps += extra
    return {_norm(x) for x in deps}


def _environment_deps():
    deps = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-\[\]]+\s*[<>=!].*)$", line)
        if m and not m.group(1).startswith(("python=", "-e")):
            deps.add(_norm(m.group(1)))
    return deps


def test_pyproject_and_environment_yml_agree():
    py, env = _pyproject_deps(), _environment_deps()
    assert py - env == set(), f"in pyproject.toml but not environment.yml: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml but not pyproject.toml: {sorted(env - py)}"


def test_brian2_numpy_pin():
    # Brian2 2.9 on Python 3.11 needs numpy < 2.4.
    assert "numpy>=1.26,<2.4" in _pyproject_deps()


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"snnkit"} | {f"snnkit.{p.parent.name}" for p in (ROOT / "snnkit").glob("*/__init__.py")}
    assert on_disk | {"snnkit._cuda"} == listed


@pytest.mark.slow
def test_wheel_contains_kernels(tmp_path):
    pytest.importorskip("setuptools")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    whl = next(tmp_path.glob("snnkit-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    cu = sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))
    assert all(f"snnkit/_cuda/{c}" in names for c in cu), names
