"""Every kernels/*.cu must compile: with nvcc to PTX on any machine that has nvcc (so CI catches CUDA
syntax errors without a GPU), and with NVRTC through snnkit.kernels on a GPU machine."""
import shutil
import subprocess

import pytest

from snnkit import kernels

CU_FILES = kernels.list_kernel_files()


def _declared_options(path):
    """Options a kernel file needs (e.g. a compile-time size), declared in the file itself as
    ``// compile-options: -DNAME=VALUE ...`` so that the nvcc check compiles what NVRTC compiles."""
    for line in path.read_text().splitlines():
        if line.strip().startswith("// compile-options:"):
            return line.split(":", 1)[1].split()
    return []


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
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on this machine; the GPU tests compile the kernels with NVRTC instead")
    r = subprocess.run([nvcc, "--ptx", "-std=c++14", "-arch=sm_80", f"-I{path.parent}", *_declared_options(path),
                        "-o", str(tmp_path / "out.ptx"), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, f"nvcc failed on {path.name}:\n{r.stderr}"


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
