"""pyproject.toml and environment.yml must list the same dependencies with the same pins, a wheel
must carry the CUDA sources, and an installed (non-editable) wheel must find them."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _req(entry: str, where: str) -> tuple[str, str]:
    """(normalized name with extras, normalized pins) of one requirement string."""
    try:
        r = Requirement(entry)
    except InvalidRequirement as e:
        raise AssertionError(f"{where}: cannot read the dependency {entry!r} ({e}); write pins in pip "
                             "syntax (>=, ==, <), e.g. 'numpy>=1.26,<2.4'") from e
    extras = f"[{','.join(sorted(r.extras))}]" if r.extras else ""
    return canonicalize_name(r.name) + extras, str(r.specifier)


def _pyproject_deps(text=None) -> dict[str, str]:
    d = tomllib.loads(text if text is not None else (ROOT / "pyproject.toml").read_text())["project"]
    deps = list(d["dependencies"])
    for extra in d.get("optional-dependencies", {}).values():
        deps += extra
    out = {}
    for x in deps:
        name, pins = _req(x, "pyproject.toml")
        assert name not in out, f"pyproject.toml lists {name} twice"
        out[name] = pins
    return out


def _environment_deps(text=None) -> dict[str, str]:
    """Every entry of ``dependencies`` (conda) and of its ``pip:`` list, except python, pip itself
    and local installs (``-e .``, paths): pinned or not."""
    env = yaml.safe_load(text if text is not None else (ROOT / "environment.yml").read_text())
    out = {}

    def add(entries, where):
        for e in entries:
            if isinstance(e, dict):
                assert set(e) == {"pip"}, f"{where}: unexpected nested section {sorted(e)}"
                add(e["pip"], where + " (pip:)")
                continue
            e = str(e).strip()
            if e.startswith(("-e", ".", "/", "file:", "git+")):
                continue
            if re.split(r"[\s<>=!~\[]", e, maxsplit=1)[0].lower() in ("python", "pip"):
                continue
            name, pins = _req(e, where)
            assert name not in out, f"{where} lists {name} twice"
            out[name] = pins
    add(env["dependencies"], "environment.yml")
    return out


def _disagreements(py: dict, env: dict) -> list[str]:
    msgs = [f"in pyproject.toml but not environment.yml: {n}{py[n]}" for n in sorted(py.keys() - env.keys())]
    msgs += [f"in environment.yml but not pyproject.toml: {n}{env[n]}" for n in sorted(env.keys() - py.keys())]
    msgs += [f"{n}: pyproject.toml pins {py[n] or '(nothing)'!r}, environment.yml pins {env[n] or '(nothing)'!r}"
             for n in sorted(py.keys() & env.keys()) if py[n] != env[n]]
    return msgs


def test_pyproject_and_environment_yml_agree():
    py, env = _pyproject_deps(), _environment_deps()
    assert py and env
    assert _disagreements(py, env) == []


def test_environment_parser_sees_unpinned_and_pip_entries():
    env = _environment_deps(textwrap.dedent("""\
        name: x
        channels:
          - conda-forge
        dependencies:
          - python=3.11
          - pip
          - numpy>=1.26,<2.4
          - foo            # unpinned
          - Some_Pkg >=2
          - pip:
              - cupy-cuda13x[ctk]>=14
              - bar
              - -e .
        """))
    assert env == {"numpy": "<2.4,>=1.26", "foo": "", "some-pkg": ">=2", "cupy-cuda13x[ctk]": ">=14", "bar": ""}
    py = _pyproject_deps(textwrap.dedent("""\
        [project]
        dependencies = ["numpy>=1.26,<2.4", "foo>=1", "some-pkg>=2"]
        [project.optional-dependencies]
        gpu = ["cupy-cuda13x>=14"]
        """))
    msgs = _disagreements(py, env)
    assert "in pyproject.toml but not environment.yml: cupy-cuda13x>=14" in msgs      # extras differ
    assert "in environment.yml but not pyproject.toml: bar" in msgs
    assert "in environment.yml but not pyproject.toml: cupy-cuda13x[ctk]>=14" in msgs
    assert any(m.startswith("foo: pyproject.toml pins '>=1'") for m in msgs)         # a pin on one side only
    assert len(msgs) == 4
    with pytest.raises(AssertionError, match="cannot read the dependency 'numpy=1.26'"):
        _environment_deps("dependencies:\n  - numpy=1.26\n")


def test_brian2_numpy_pin():
    # Brian2 2.9 on Python 3.11 needs numpy < 2.4.
    assert _pyproject_deps()["numpy"] == str(Requirement("numpy>=1.26,<2.4").specifier)


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"snnkit"} | {f"snnkit.{p.parent.name}" for p in (ROOT / "snnkit").glob("*/__init__.py")}
    assert on_disk | {"snnkit._cuda"} == listed


def _notebook_parameters(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}


def test_readme_papermill_examples_use_existing_parameters():
    runs = re.findall(r"papermill\s+(notebooks/\S+\.ipynb)\s+\S+((?:\s+-p\s+\S+\s+\S+)+)",
                      (ROOT / "README.md").read_text())
    assert runs, "README.md shows no papermill example"
    for nb, opts in runs:
        have = _notebook_parameters(ROOT / nb)
        for name in re.findall(r"-p\s+(\S+)\s+\S+", opts):
            assert name in have, f"README.md runs {nb} with -p {name}, but its parameters cell has {sorted(have)}"


# -- the wheel ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources (so the build leaves nothing in the checkout)."""
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("snnkit", "kernels"):
        shutil.copytree(ROOT / d, src / d, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return next(out.glob("snnkit-*.whl"))


@pytest.mark.slow
def test_wheel_contains_kernels(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    cu = sorted(p.name for p in (*(ROOT / "kernels").glob("*.cu"), *(ROOT / "kernels").glob("*.cuh")))
    assert any(c.endswith(".cuh") for c in cu)            # the shared headers the .cu files #include
    assert cu and all(f"snnkit/_cuda/{c}" in names for c in cu), names


@pytest.mark.slow
def test_installed_wheel_finds_its_kernels(wheel, tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "cwd"
    elsewhere.mkdir()
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                        "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    probe = ("import json, snnkit, snnkit.kernels as k; "
             "print(json.dumps({'pkg': snnkit.__file__, 'dir': str(k.kernel_dir()), "
             "'files': [p.name for p in k.list_kernel_files()]}))")
    env = {k: v for k, v in os.environ.items() if k not in ("SNNKIT_KERNEL_DIR", "PYTHONPATH")}
    env |= {"PYTHONPATH": str(target), "SNNKIT_BACKEND": "numpy"}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    pkg = (target / "snnkit").resolve()
    assert Path(got["pkg"]).resolve().parent == pkg, f"imported {got['pkg']}, not the installed wheel"
    kdir = Path(got["dir"]).resolve()
    assert kdir.is_relative_to(pkg), f"kernel_dir() is {kdir}, outside the installed package {pkg}"
    assert got["files"] == sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))
