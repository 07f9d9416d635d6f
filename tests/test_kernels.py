"""Every kernels/*.cu must compile: with nvcc to PTX on any machine that has nvcc (so CI catches CUDA
syntax errors without a GPU), and with NVRTC through snnkit.kernels on a GPU machine. The lookup
helper snnkit.kernels.function: dtype suffixes, -D options from Python constants, its cache; a
file compiled without the constants it shares with Python stops with #error."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from snnkit import kernels
from snnkit.bats.neuron import KERNEL_DEFINES as BATS_DEFINES
from snnkit.s3gd.cuda import DEFINES as S3GD_DEFINES

CU_FILES = kernels.list_kernel_files()
# the constants each method's launchers pass (the files have no value of their own)
PYTHON_DEFINES = {"bats_": BATS_DEFINES, "s3gd_": S3GD_DEFINES}


def _python_defines(path):
    return next((d for prefix, d in PYTHON_DEFINES.items() if path.name.startswith(prefix)), {})


def _source_with_headers(path):
    text = path.read_text()
    return text + "".join((path.parent / h).read_text() for h in re.findall(r'#include "([\w.]+)"', text))


def _used_defines(path):
    """The Python constants a file (or a header it includes) uses."""
    text = _source_with_headers(path)
    return [n for n in _python_defines(path) if re.search(rf"\b{n}\b", text)]


def _declared_options(path):
    """Options a kernel file needs: the Python constants its launchers pass, and a run-time size
    declared in the file itself as ``// compile-options: -DNAME=VALUE ...`` (STBP_T), so that the
    nvcc check compiles what NVRTC compiles."""
    opts = list(kernels.define_options(_python_defines(path)))
    for line in path.read_text().splitlines():
        if line.strip().startswith("// compile-options:"):
            opts += line.split(":", 1)[1].split()
    return opts


def _nvcc(path, options, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on this machine; the GPU tests compile the kernels with NVRTC instead")
    return subprocess.run([nvcc, "--ptx", "-std=c++14", "-arch=sm_80", f"-I{path.parent}", *options,
                           "-o", str(tmp_path / "out.ptx"), str(path)], capture_output=True, text=True)


def test_kernel_sources_are_found():
    d = kernels.kernel_dir()
    assert d.is_dir()
    with pytest.raises(FileNotFoundError, match="no kernel file"):
        kernels.kernel_path("does_not_exist.cu")


def test_kernel_dir_override(tmp_path, monkeypatch):
    (tmp_path / "x.cu").write_text('extern "C" __global__ void k() {}')
    monkeypatch.setenv("SNNKIT_KERNEL_DIR", str(tmp_path))
    assert kernels.kernel_dir() == tmp_path
    monkeypatch.setenv("SNNKIT_KERNEL_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="SNNKIT_KERNEL_DIR"):
        kernels.kernel_dir()


@pytest.mark.parametrize("path", CU_FILES, ids=[p.name for p in CU_FILES])
def test_cuda_source_compiles_with_nvcc(path, tmp_path):
    r = _nvcc(path, _declared_options(path), tmp_path)
    assert r.returncode == 0, f"nvcc failed on {path.name}:\n{r.stderr}"
    ptx = (tmp_path / "out.ptx").read_text()
    entries = re.findall(r"\.visible \.entry (\w+)\(", ptx)
    # one convention for f32/f64: every templated kernel has both wrappers (bats_sort_keys works
    # on float32 bit patterns only)
    for name in entries:
        if name.endswith("_f32") and name != "bats_sort_keys_f32":
            assert name[:-4] + "_f64" in entries, f"{path.name}: {name} has no f64 twin"
    assert all(n.endswith(("_f32", "_f64")) for n in entries), entries


@pytest.mark.parametrize("path", [p for p in CU_FILES if _used_defines(p)],
                         ids=[p.name for p in CU_FILES if _used_defines(p)])
def test_missing_python_constant_is_a_compile_error(path, tmp_path):
    """Compiled without one of the -D constants its launchers pass, a file stops with an #error
    that says where the value lives (it must never fall back to a copy of its own)."""
    opts = _declared_options(path)
    for name in _used_defines(path):
        r = _nvcc(path, [o for o in opts if not o.startswith(f"-D{name}=")], tmp_path)
        assert r.returncode != 0 and "#error" in r.stderr and "snnkit." in r.stderr, (name, r.stderr[-500:])


def test_no_cu_file_keeps_a_python_constant():
    """The constants passed by the launchers are not #defined again in any kernel file."""
    names = set(BATS_DEFINES) | set(S3GD_DEFINES)
    for path in list(CU_FILES) + sorted(kernels.kernel_dir().glob("*.cuh")):
        for name in names:
            assert not re.search(rf"#define\s+{name}\b", path.read_text()), f"{path.name} defines {name}"


def test_dtype_suffix_and_its_error():
    assert kernels.dtype_suffix(np.float32) == "f32" and kernels.dtype_suffix(np.dtype("float64")) == "f64"
    with pytest.raises(TypeError, match=r"dtype is float16.*float32 or float64"):
        kernels.dtype_suffix(np.float16)
    with pytest.raises(TypeError, match="dtype is int32"):
        kernels.function("s3gd_forward.cu", "s3gd_lif_forward", np.int32, S3GD_DEFINES)


def test_define_options_are_sorted_and_exact():
    assert kernels.define_options({"B": 2, "A": 1e-4, "C": True, "D": np.int32(7)}) == (
        "-DA=0.0001", "-DB=2", "-DC=1", "-DD=7")
    assert kernels.define_options(None) == ()
    assert float(kernels.define_options({"X": 0.1 + 0.2})[0].split("=")[1]) == 0.1 + 0.2   # round-trips
    with pytest.raises(ValueError, match="C identifier"):
        kernels.define_options({"not a name": 1})
    with pytest.raises(TypeError, match="must be a number"):
        kernels.define_options({"X": "32"})


def test_function_caches_per_defines(monkeypatch):
    """The cache key holds the defines' values: a changed constant compiles a new module."""
    calls = []
    monkeypatch.setattr(kernels, "get_function", lambda f, n, o: calls.append((f, n, o)) or object())
    kernels.clear_cache()
    d = {"S3GD_CHUNK": 32, "S3GD_JT": 32}
    a = kernels.function("x.cu", "k", np.float32, d)
    assert kernels.function("x.cu", "k", np.float32, d) is a and len(calls) == 1
    assert calls[0] == ("x.cu", "k_f32", ("-DS3GD_CHUNK=32", "-DS3GD_JT=32"))
    d["S3GD_CHUNK"] = 16
    assert kernels.function("x.cu", "k", np.float32, d) is not a and calls[-1][2][0] == "-DS3GD_CHUNK=16"
    kernels.function("x.cu", "k", np.float64, None, ("--fmad=false",))
    assert calls[-1] == ("x.cu", "k_f64", ("--fmad=false",))
    kernels.clear_cache()


@pytest.mark.gpu
@pytest.mark.parametrize("path", CU_FILES, ids=[p.name for p in CU_FILES])
def test_cuda_source_compiles_with_nvrtc(path):
    opts = tuple(_declared_options(path))
    mod = kernels.get_module(path.name, opts)
    assert mod is kernels.get_module(path.name, opts)          # cached


@pytest.mark.gpu
def test_compile_error_names_file_and_log(tmp_path, monkeypatch):
    (tmp_path / "broken.cu").write_text('extern "C" __global__ void k(float* x) { x[0] = undefined_name; }')
    monkeypatch.setenv("SNNKIT_KERNEL_DIR", str(tmp_path))
    kernels.clear_cache()
    with pytest.raises(kernels.KernelCompileError) as e:
        kernels.get_module("broken.cu")
    assert "broken.cu" in str(e.value) and "undefined_name" in str(e.value)
    kernels.clear_cache()


@pytest.mark.gpu
def test_launch_grows_grid_beyond_one_block():
    import cupy as cp
    k = cp.RawKernel('extern "C" __global__ void inc(float* x, int n)'
                     '{int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] += 1.0f;}', "inc")
    n = 70000
    x = cp.zeros(n, dtype=cp.float32)
    kernels.launch_1d(k, n, (x, cp.int32(n)))
    assert float(x.sum()) == n
