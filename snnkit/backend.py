"""Which array module runs the maths: CuPy on a working GPU, NumPy everywhere else.

Every method in snnkit is written against an array module ``xp`` (NumPy's API). This module
decides, once, which one that is:

* ``SNNKIT_BACKEND=numpy`` forces NumPy.
* ``SNNKIT_BACKEND=cupy`` forces CuPy and raises :class:`BackendUnavailable` (saying why and how to
  fix it) when CuPy cannot work here.
* unset (or ``auto``): CuPy only when it imports, a device is present AND a probe kernel compiles
  with NVRTC and runs. A GPU without NVRTC therefore falls back to NumPy at import time instead of
  crashing in the middle of a training run.

Seeding: :func:`seed` seeds NumPy's and (when active) CuPy's generators; :func:`rng` returns a
NumPy ``Generator`` so that random initial weights are drawn on the host and are identical on both
backends for the same seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BackendUnavailable", "get_xp", "name", "reason", "info", "use", "to_numpy", "to_device",
    "seed", "rng", "is_cupy_array", "synchronize", "xp_of",
]


class BackendUnavailable(RuntimeError):
    """The requested array backend cannot run on this machine."""


@dataclass(frozen=True)
class _Choice:
    xp: object
    name: str
    reason: str


_choice: _Choice | None = None

_PROBE_SRC = r'''
extern "C" __global__ void snnkit_probe(float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 2.0f * x[i] + 1.0f;
}
'''


# the CuPy wheel of pyproject's gpu extra (tests/test_backend.py checks they agree)
_GPU_WHEEL = "cupy-cuda13x[ctk]"


def _probe_cupy():
    """Return (cupy, None) when CuPy can compile and run a kernel here, else (None, why)."""
    try:
        import cupy  # noqa: F401
    except ImportError as e:
        return None, (f"CuPy is not installed ({e}). Install the GPU extra: "
                      "pip install 'snnkit[gpu]' (or the cupy-cudaXXx wheel matching your CUDA).")
    except Exception as e:  # broken install, missing CUDA libraries
        return None, f"CuPy failed to import ({type(e).__name__}: {e}). Reinstall CuPy for your CUDA version."
    import cupy
    try:
        n_dev = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return None, (f"CuPy is installed but no CUDA driver/device answers ({type(e).__name__}: {e}). "
                      "Run on a machine with an NVIDIA GPU and driver, or set SNNKIT_BACKEND=numpy.")
    if n_dev < 1:
        return None, "CuPy is installed but no CUDA device is visible (check CUDA_VISIBLE_DEVICES)."
    try:
        kern = cupy.RawKernel(_PROBE_SRC, "snnkit_probe")
        x = cupy.arange(4, dtype=cupy.float32)
        kern((1,), (32,), (x, np.int32(4)))
        ok = cupy.asnumpy(x).tolist() == [1.0, 3.0, 5.0, 7.0]
    except Exception as e:
        return None, (f"a CUDA device is present but the probe kernel failed to compile or run with NVRTC "
                      f"({type(e).__name__}: {e}). Install NVRTC for your CUDA version: for CUDA 13 the gpu "
                      f"extra brings it (pip install 'snnkit[gpu]', i.e. {_GPU_WHEEL}); for CUDA 12 use "
                      "pip install 'cupy-cuda12x[ctk]' (or add nvidia-cuda-nvrtc-cu12 to an existing "
                      "cupy-cuda12x). Or set SNNKIT_BACKEND=numpy.")
    if not ok:
        return None, "the probe kernel ran but produced wrong results; the CUDA setup is broken."
    return cupy, None


def _choose() -> _Choice:
    want = os.environ.get("SNNKIT_BACKEND", "auto").strip().lower()
    if want not in ("auto", "", "numpy", "cupy"):
        raise BackendUnavailable(
            f"SNNKIT_BACKEND={want!r} is not a backend; use 'numpy', 'cupy' or leave it unset (auto).")
    if want == "numpy":
        return _Choice(np, "numpy", "SNNKIT_BACKEND=numpy")
    cupy, why = _probe_cupy()
    if want == "cupy":
        if cupy is None:
            raise BackendUnavailable(f"SNNKIT_BACKEND=cupy was requested but CuPy cannot work here: {why}")
        return _Choice(cupy, "cupy", "SNNKIT_BACKEND=cupy")
    if cupy is None:
        return _Choice(np, "numpy", f"auto: {why}")
    return _Choice(cupy, "cupy", "auto: CUDA device found and the probe kernel compiled and ran")


def _current() -> _Choice:
    global _choice
    if _choice is None:
        _choice = _choose()
    return _choice


def get_xp():
    """The active array module (``numpy`` or ``cupy``)."""
    return _current().xp


def name() -> str:
    """``'numpy'`` or ``'cupy'``."""
    return _current().name


def reason() -> str:
    """Why this backend was chosen (shown by ``snnkit info``)."""
    return _current().reason


def use(backend: str | None) -> str:
    """Switch backend at run time (``'numpy'``, ``'cupy'`` or ``None`` for auto); returns its name."""
    global _choice
    if backend is None:
        os.environ.pop("SNNKIT_BACKEND", None)
    else:
        os.environ["SNNKIT_BACKEND"] = backend
    _choice = None
    return name()


def info() -> dict:
    """Backend, the reason for it, device name and library versions."""
    c = _current()
    out = {"backend": c.name, "reason": c.reason, "numpy": np.__version__, "device": "CPU"}
    if c.name == "cupy":
        cp = c.xp
        dev = cp.cuda.Device()
        props = cp.cuda.runtime.getDeviceProperties(dev.id)
        nm = props["name"]
        out["device"] = nm.decode() if isinstance(nm, bytes) else str(nm)
        out["cupy"] = cp.__version__
        out["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
        out["compute_capability"] = dev.compute_capability
    return out


def is_cupy_array(a) -> bool:
    return type(a).__module__.startswith("cupy")


def xp_of(a):
    """The array module that owns ``a`` (so functions follow their inputs, not the global choice)."""
    if is_cupy_array(a):
        import cupy
        return cupy
    return np


def to_numpy(a):
    """A NumPy copy/view of ``a`` wherever it lives (scalars and lists pass through np.asarray)."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def to_device(a, dtype=None):
    """``a`` as an array of the active backend (optionally cast)."""
    xp = get_xp()
    out = xp.asarray(a)
    if dtype is not None and out.dtype != dtype:
        out = out.astype(dtype)
    return out


def synchronize():
    """Wait for all queued GPU work, every stream's (no-op on NumPy); benchmarks call this around timers."""
    if name() == "cupy":
        get_xp().cuda.Device().synchronize()


def seed(s: int) -> None:
    """Seed NumPy's global generator and, when active, CuPy's."""
    np.random.seed(s)
    if name() == "cupy":
        get_xp().random.seed(s)


def rng(s: int | None = None) -> np.random.Generator:
    """A host-side NumPy Generator; draw on the host, then :func:`to_device`, for identical
    initial weights on both backends."""
    return np.random.default_rng(s)
