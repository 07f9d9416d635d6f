"""Test-wide setup: markers gpu (skipped without a working CuPy backend), brian2 (skipped without
Brian2), browser (skipped, with the reason, without Playwright or a system Chromium), slow; the
session fixture ``tour_build`` (the real tour, run once). CPU tests pin the NumPy backend so they do not depend on the machine."""
import os

import pytest

# Every lesson claim and exercise solution of a notebook executed by a test must hold (snnkit.lessons).
os.environ.setdefault("SNNKIT_STRICT_CLAIMS", "1")


def _cupy_works():
    try:
        from snnkit.backend import _probe_cupy
        cp, _ = _probe_cupy()
        return cp is not None
    except Exception:
        return False


_GPU = None


def pytest_collection_modifyitems(config, items):
    global _GPU
    need_gpu = any("gpu" in item.keywords for item in items)
    if need_gpu and _GPU is None:
        _GPU = _cupy_works()
    for item in items:
        if "gpu" in item.keywords and not _GPU:
            item.add_marker(pytest.mark.skip(reason="no working CuPy backend (GPU + NVRTC) on this machine"))
        if "browser" in item.keywords:
            from browser_helpers import why_no_browser
            reason = why_no_browser()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"real-browser test skipped: {reason}"))
        if "brian2" in item.keywords:
            try:
                import brian2  # noqa: F401
            except ImportError:
                item.add_marker(pytest.mark.skip(reason="Brian2 is not installed (pip install 'snnkit[brian2]')"))


@pytest.fixture
def numpy_backend(monkeypatch):
    """Force the NumPy backend for one test."""
    from snnkit import backend
    monkeypatch.setenv("SNNKIT_BACKEND", "numpy")
    backend.use("numpy")
    yield
    backend.use(None)


@pytest.fixture
def cp(monkeypatch):
    """The CuPy backend for one test; yields the cupy module (the S3GD GPU tests)."""
    cupy = pytest.importorskip("cupy")
    from snnkit import backend
    monkeypatch.setenv("SNNKIT_BACKEND", "cupy")
    backend.use("cupy")
    yield cupy
    backend.use(None)


# Modules that test the notebook stack (papermill, nbformat, ...) need the `dev` extra. A bare GPU
# machine running `make test-gpu` may not have it: collect them only where it is installed.
def _has(mod):
    import importlib.util
    return importlib.util.find_spec(mod) is not None


collect_ignore = [] if (_has("nbformat") and _has("papermill")) else ["test_reproduce.py", "test_notebooks.py"]


# ---- the real tour, built once per session (slow tests reuse it: the notebook timings, the panel
# sweeps, the page checks, the real-browser tests), and the `browser` marker.
@pytest.fixture(scope="session")
def tour_build():
    """Run the real tour once into build/tour with every panel's full range swept
    (``run_tour(sweep=True)``) and return ``(folder, {notebook name: NotebookRun})``."""
    from snnkit.tour import ROOT, run_tour
    out = ROOT / "build" / "tour"
    runs = run_tour(out, sweep=True)
    return out, {r.name: r for r in runs}

