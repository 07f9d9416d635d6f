"""Loading the CUDA sources in ``kernels/*.cu`` as CuPy raw modules.

Each ``.cu`` file holds ``extern "C"`` kernels for one concern and mirrors a NumPy twin in the
package. :func:`get_function` compiles a file once per (file, options, name_expressions) with
NVRTC through ``cupy.RawModule`` and caches the module; a compile error becomes a
:class:`KernelCompileError` that names the file and carries the compiler log.

Where the sources are found, first hit wins:
1. ``$SNNKIT_KERNEL_DIR`` (for experimenting with a kernel without reinstalling);
2. the ``snnkit._cuda`` package data of an installed wheel;
3. ``kernels/`` next to the ``snnkit/`` folder of a source checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["KernelCompileError", "kernel_dir", "kernel_path", "list_kernel_files", "get_module",
           "get_function", "launch_1d", "clear_cache"]


class KernelCompileError(RuntimeError):
    """NVRTC could not compile a kernel file; the message holds the file and the compiler log."""


_cache: dict = {}


def kernel_dir() -> Path:
    env = os.environ.get("SNNKIT_KERNEL_DIR")
    if env:
        p = Path(env)
        if not p.is_dir():
            raise FileNotFoundError(f"SNNKIT_KERNEL_DIR={env} is not a directory; unset it or point it at kernels/.")
        return p
    try:
        import importlib.resources as ir
        p = Path(str(ir.files("snnkit._cuda")))
        if any(p.glob("*.cu")):
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    p = Path(__file__).resolve().parent.parent / "kernels"
    if p.is_dir():
        return p
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


def launch_1d(kernel, n: int, args: tuple, block: int = 256, shared_mem: int = 0):
    """Launch ``kernel`` over ``n`` threads in 1-D blocks; grids grow with n (no batch cap)."""
    if n <= 0:
        return
    grid = (n + block - 1) // block
    kernel((grid,), (block,), args, shared_mem=shared_mem)


def clear_cache() -> None:
    _cache.clear()
