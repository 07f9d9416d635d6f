#!/usr/bin/env bash
# One GPU-machine call for issue 16's S3GD items: the finiteness-check kernel's GPU test, the
# loop-vs-step profile of S3GD Fashion-MNIST (sparse, dense; with the previous per-step check as the
# peer) and S3GD SHD (stand-in data: no copy of SHD reaches the GPU machine), alone on the GPU; then
# s3gd_shd_delta_sweep at full size on its stand-in, with as many epochs as the time left allows
# (estimated from the profile's SHD loop time; the record states them). Logs and run records are
# packed into one archive.
#
#   bash reproductions/gpu_session_s3gd.sh CARRY FASHION OUT [SECONDS]
#
# CARRY, FASHION: as for tools/gpu_mnist_setup.sh (built by tools/gpu_carry.sh). SECONDS (default
# 235) is the whole call's deadline. DRY=1: a CPU dry run at toy size on stand-in data.
set -u
carry=$(cd "${1:?carry dir}" && pwd); fashion=$(cd "${2:?fashion dir}" && pwd); out=${3:?out dir}; total=${4:-235}
T0=$(date +%s)
left() { echo $(( T0 + total - $(date +%s) )); }
RUNS=/tmp/runs_s3gd
mkdir -p "$out" $RUNS
if [ "${DRY:-0}" = 1 ]; then
  export PYTHONPATH=$PWD SNNKIT_BACKEND=numpy SNNKIT_DATA=/tmp/dry_data PYTHONUNBUFFERED=1 SNNKIT_OFFLINE=1
  PY=${PY:-python3}; PROF="--stand-in --small --steps 3 --warmup 1"; SHD="-p n_hidden 16 -p n_steps 50 -p limit 256"
else
  source tools/gpu_mnist_setup.sh "$carry" "$fashion" > $RUNS/setup.log 2>&1
  PY=python3; PROF="--steps 100 --stand-in-for shd"; SHD=""
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $RUNS/gpu.txt
  timeout 60 env SNNKIT_BACKEND=cupy $PY -m pytest tests/test_trainer_gpu.py -m gpu -q -s -p no:cacheprovider \
    -k "nonfinite or catches_nan" 2>&1 | tee $RUNS/gputest.log | tail -8
fi
export OMP_NUM_THREADS=4
echo "tree $(cat REVISION 2>/dev/null || echo unknown); $(date -u +%FT%TZ)" | tee $RUNS/session.txt

# 1. profiles, alone on the GPU
timeout $(( $(left) - 90 > 30 ? $(left) - 90 : 30 )) $PY benchmarks/profile_loops.py $PROF --peer-check \
  --configs s3gd_sparse s3gd_dense s3gd_shd --json $RUNS/profile_loops.json 2>&1 | tee $RUNS/profile_loops.log

# 2. epochs of the SHD stand-in run that fit the time left: 7 trainings (dense, 6 deltas) x 64 steps per
#    epoch at the profiled loop time, after ~70 s of notebook overheads (loading, evaluation, benchmarks)
EP=$($PY - "$RUNS/profile_loops.json" "$(left)" "${DRY:-0}" <<'PY'
import json, sys
p, left, dry = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
try:
    ms = json.load(open(p))["s3gd_shd"]["plain_ms_per_step"]
except Exception:
    ms = 60.0
print(1 if dry else max(1, min(100, int((left - 70) / (7 * 64 * ms / 1e3 * 1.15)))))
PY
)
echo "time left $(left) s: SHD stand-in epochs $EP" | tee -a $RUNS/session.txt
s=$(date +%s)
timeout $(( $(left) - 8 )) $PY -m snnkit.reproduce s3gd_shd_delta_sweep --executor plain --stand-in -p epochs $EP $SHD \
  --out $RUNS/shd_standin > $RUNS/shd_standin.log 2>&1
echo "shd_standin rc=$? wall=$(( $(date +%s) - s ))s" | tee -a $RUNS/session.txt
tail -3 $RUNS/shd_standin.log
echo "done at $(( $(date +%s) - T0 )) s" | tee -a $RUNS/session.txt

# 3. pack logs, profile, run records and the executed notebook (figures' HTML left out)
(cd /tmp && tar czf "$out/s3gd_session.tar.gz" --exclude='*.html' runs_s3gd)
cp $RUNS/*.log $RUNS/*.txt $RUNS/profile_loops.json "$out"/ 2>/dev/null
ls -la "$out"
