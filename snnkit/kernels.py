"""Loading the CUDA sources in ``kernels/*.cu`` as CuPy raw modules.

Each ``.cu`` file holds ``extern "C"`` kernels for one concern and mirrors a NumPy twin in the
package. :func:`get_function` compiles a file once per (file, options, name_expressions) with
NVRTC through ``cupy.RawModule`` and caches the module; a compile error becomes a
:class:`KernelCompileError` that names the file and carries the compiler log.

Launchers look kernels up with :func:`function`, the one place that knows the conventions:

* f32/f64: every kernel is a ``template`` ``__device__`` function plus ``extern "C"`` wrappers
  named ``<name>_f32`` and ``<name>_f64`` (one instantiation macro per file); ``function(file,
  name, dtype)`` appends the suffix of ``dtype`` (:func:`dtype_suffix`).
* constants that Python and CUDA share (a block size, a chunk length, a tolerance) are defined
  once, in Python, and reach the kernel as NVRTC ``-D`` options: ``defines={"S3GD_CHUNK": 32}``.
  A ``.cu`` file that needs one says ``#error`` when it is missing, so it cannot silently drift.
* formulas used by several kernels live in shared headers ``kernels/*_common.cuh`` (found through
  ``-I<kernel dir>``), each ``__device__`` function beside a pointer to its one NumPy twin.

Where the sources are found, first hit wins:
1. ``$SNNKIT_KERNEL_DIR`` (for experimenting with a kernel without reinstalling);
2. ``kernels/`` next to the imported ``snnkit/`` folder (a source checkout: the kernels of the
   very checkout whose Python runs, even when another checkout is installed in editable mode and
   its ``snnkit._cuda`` mapping would point there);
3. the ``snnkit._cuda`` package data of an installed wheel.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path

__all__ = ["KernelCompileError", "kernel_dir", "kernel_path", "list_kernel_files", "get_module",
           "get_function", "function", "dtype_suffix", "define_options", "launch_1d", "clear_cache"]


class KernelCompileError(RuntimeError):
    """NVRTC could not compile a kernel file; the message holds the file and the compiler log."""


_cache: dict = {}
_functions: dict = {}       # function()'s lookups: the launch-bound S3GD backward calls it ~30x a step

# the float types the kernels are instantiated for, and the suffix of their extern "C" names
_SUFFIX = {"float32": "f32", "float64": "f64"}


def kernel_dir() -> Path:
    env = os.environ.get("SNNKIT_KERNEL_DIR")
    if env:
        p = Path(env)
        if not p.is_dir():
            raise FileNotFoundError(f"SNNKIT_KERNEL_DIR={env} is not a directory; unset it or point it at kernels/.")
        return p
    p = Path(__file__).resolve().parent.parent / "kernels"
    if p.is_dir() and any(p.glob("*.cu")):
        return p
    try:
        import importlib.resources as ir
        p = Path(str(ir.files("snnkit._cuda")))
        if any(p.glob("*.cu")):
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    raise FileNotFoundError(
        "CUDA kernel sources not found: neither the snnkit._cuda package data nor a kernels/ folder next "
        "to the package exist. Reinstall snnkit (pip install .) or set SNNKIT_KERNEL_DIR.")


def kernel_path(filename: str) -> Path:
    p = kernel_dir() / filename
    if not p.is_file():
        avail = ", ".join(sorted(f.name for f in kernel_dir().glob("*.cu")))
        raise FileNotFoundError(f"no kernel file {filename!r} in {kernel_dir()} (available: {avail})")
    return p


def list_kernel_files() -> list[Path]:
    return sorted(kernel_dir().glob("*.cu"))


def get_module(filename: str, options: tuple = (), name_expressions: tuple | None = None):
    """The compiled ``cupy.RawModule`` of ``kernels/<filename>`` (cached)."""
    import cupy
    options = tuple(options)
    key = (filename, options, tuple(name_expressions) if name_expressions else None)
    mod = _cache.get(key)
    if mod is not None:
        return mod
    path = kernel_path(filename)
    src = path.read_text()
    opts = ("--std=c++14", f"-I{path.parent}") + options
    try:
        mod = cupy.RawModule(code=src, options=opts,
                             name_expressions=list(name_expressions) if name_expressions else None)
        mod.compile()
    except cupy.cuda.compiler.CompileException as e:
        log = e.get_message() if hasattr(e, "get_message") else str(e)
        raise KernelCompileError(f"NVRTC failed to compile {path} with options {opts}:\n{log}") from e
    _cache[key] = mod
    return mod


def get_function(filename: str, name: str, options: tuple = ()):
    """The kernel ``name`` of ``kernels/<filename>``."""
    mod = get_module(filename, options)
    try:
        return mod.get_function(name)
    except Exception as e:
        raise KernelCompileError(f"kernel {name!r} not found in {kernel_path(filename)} "
                                 f"(is it declared extern \"C\"?): {e}") from e


def dtype_suffix(dtype, argument: str = "dtype") -> str:
    """``"f32"`` for float32, ``"f64"`` for float64 (the suffix of a kernel's ``extern "C"`` name)."""
    import numpy as np
    try:
        name = np.dtype(dtype).name
    except TypeError as e:
        raise TypeError(f"{argument} must be a NumPy float dtype (float32 or float64), got {dtype!r}") from e
    sfx = _SUFFIX.get(name)
    if sfx is None:
        raise TypeError(f"{argument} is {name}, but the CUDA kernels run in float32 or float64 only; "
                        "cast the array first (x.astype(np.float32)).")
    return sfx


def define_options(defines) -> tuple:
    """``{"NAME": value}`` -> ``("-DNAME=value", ...)`` sorted by name, so that equal defines give
    equal options (and one cached module). Floats are written with ``repr`` (round-trips exactly),
    bools as 0/1; names must be C identifiers."""
    if not defines:
        return ()
    out = []
    for k in sorted(defines):
        v = defines[k]
        if not (isinstance(k, str) and k.isidentifier()):
            raise ValueError(f"defines: {k!r} is not a C identifier; use names like S3GD_CHUNK")
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, numbers.Integral):
            text = str(int(v))
        elif isinstance(v, numbers.Real):
            text = repr(float(v))
        else:
            raise TypeError(f"defines[{k!r}] must be a number, got {v!r}")
        out.append(f"-D{k}={text}")
    return tuple(out)


def function(filename: str, name: str, dtype=None, defines=None, options: tuple = ()):
    """The kernel ``name`` of ``kernels/<filename>`` for ``dtype``: ``<name>_f32`` / ``<name>_f64``
    (``dtype=None``: ``name`` as written, for a kernel with one type only). ``defines`` are the
    Python constants the file needs (turned into sorted ``-D`` options); ``options`` other NVRTC
    flags (``--fmad=false``). Cached per (file, name, dtype, defines, options): a hit costs well
    under a microsecond, which matters to the launch-bound S3GD backward (~30 lookups a step)."""
    key = (filename, name, dtype, _defines_key(defines), options)
    f = _functions.get(key)
    if f is None:
        full = name if dtype is None else f"{name}_{dtype_suffix(dtype)}"
        f = _functions[key] = get_function(filename, full, define_options(defines) + tuple(options))
    return f


_define_keys: dict = {}


def _defines_key(defines) -> tuple:
    # Sorting the items on every call would cost ~10 us; a module's constant dict is looked up by
    # id instead, and the snapshot comparison keeps the cache right if the dict was changed.
    if not defines:
        return ()
    hit = _define_keys.get(id(defines))
    if hit is not None and hit[0] == defines:
        return hit[1]
    key = tuple(sorted(defines.items()))
    if len(_define_keys) > 256:           # fresh dicts per call (STBP's {"STBP_T": T}): stay small
        _define_keys.clear()
    _define_keys[id(defines)] = (dict(defines), key)
    return key


def launch_1d(kernel, n: int, args: tuple, block: int = 256, shared_mem: int = 0):
    """Launch ``kernel`` over ``n`` threads in 1-D blocks; grids grow with n (no batch cap)."""
    if n <= 0:
        return
    grid = (n + block - 1) // block
    kernel((grid,), (block,), args, shared_mem=shared_mem)


def clear_cache() -> None:
    _cache.clear()
    _functions.clear()
    _define_keys.clear()
