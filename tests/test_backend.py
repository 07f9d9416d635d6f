import subprocess
import sys

import numpy as np
import pytest

from snnkit import backend


def test_numpy_forced(monkeypatch):
    monkeypatch.setenv("SNNKIT_BACKEND", "numpy")
    assert backend.use("numpy") == "numpy"
    assert backend.get_xp() is np
    assert "SNNKIT_BACKEND=numpy" in backend.reason()
    backend.use(None)


def test_unknown_backend_is_rejected(monkeypatch):
    monkeypatch.setenv("SNNKIT_BACKEND", "tensorflow")
    backend._choice = None
    with pytest.raises(backend.BackendUnavailable, match="SNNKIT_BACKEND='tensorflow'"):
        backend.name()
    monkeypatch.delenv("SNNKIT_BACKEND")
    backend._choice = None


def test_forced_cupy_without_gpu_says_why(monkeypatch):
    cp, why = backend._probe_cupy()
    if cp is not None:
        pytest.skip("CuPy works on this machine")
    monkeypatch.setenv("SNNKIT_BACKEND", "cupy")
    backend._choice = None
    with pytest.raises(backend.BackendUnavailable) as e:
        backend.get_xp()
    msg = str(e.value)
    assert "SNNKIT_BACKEND=cupy" in msg and why in msg
    assert any(w in msg for w in ("not installed", "driver", "NVRTC"))
    monkeypatch.delenv("SNNKIT_BACKEND")
    backend._choice = None


def test_auto_falls_back_with_a_reason():
    cp, why = backend._probe_cupy()
    backend.use(None)
    if cp is None:
        assert backend.name() == "numpy" and backend.reason().startswith("auto:")
    else:
        assert backend.name() == "cupy"


def test_cli_cupy_on_cpu_machine_fails_clearly():
    cp, _ = backend._probe_cupy()
    if cp is not None:
        pytest.skip("CuPy works on this machine")
    r = subprocess.run([sys.executable, "-m", "snnkit.cli", "info"], capture_output=True, text=True,
                       env={**__import__("os").environ, "SNNKIT_BACKEND": "cupy"})
    assert r.returncode != 0
    assert "CuPy cannot work here" in r.stderr


def test_seeded_host_draws_are_reproducible(numpy_backend):
    a = backend.rng(3).normal(size=5)
    b = backend.rng(3).normal(size=5)
    np.testing.assert_array_equal(a, b)
    backend.seed(7)
    x = np.random.rand(3)
    backend.seed(7)
    np.testing.assert_array_equal(x, np.random.rand(3))


def test_to_numpy_and_device_roundtrip(numpy_backend):
    x = backend.to_device([1, 2, 3], dtype=np.float32)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(x), [1, 2, 3])
    assert backend.xp_of(x) is np


@pytest.mark.gpu
def test_gpu_backend_reports_device():
    backend.use("cupy")
    inf = backend.info()
    assert inf["backend"] == "cupy" and inf["device"] != "CPU"
    print("snnkit info on GPU:", inf)
    r = subprocess.run([sys.executable, "-m", "snnkit.cli", "info"], capture_output=True, text=True)
    print(r.stdout)
    assert r.returncode == 0 and "cupy" in r.stdout
    backend.use(None)


def test_nvrtc_hint_matches_the_gpu_extra(monkeypatch):
    """A device without a working NVRTC: the hint names pyproject's gpu extra wheel (CUDA 13) and
    the CUDA 12 alternative. CuPy is faked, so this runs everywhere."""
    import tomllib
    import types
    from pathlib import Path

    gpu = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]["gpu"]
    wheel = next(r for r in gpu if r.startswith("cupy"))
    name = wheel.split(">")[0].split("=")[0].split("<")[0].strip()          # cupy-cuda13x[ctk]

    def no_nvrtc(*a, **k):
        raise RuntimeError("libnvrtc.so.13: cannot open shared object file")
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    fake.RawKernel = no_nvrtc
    fake.arange = lambda *a, **k: None
    monkeypatch.setitem(__import__("sys").modules, "cupy", fake)
    cp, why = backend._probe_cupy()
    assert cp is None
    assert "NVRTC" in why and "libnvrtc.so.13" in why
    assert name in why and "snnkit[gpu]" in why
    assert "cupy-cuda12x" in why and "cu12" in why
    assert backend._GPU_WHEEL == name
