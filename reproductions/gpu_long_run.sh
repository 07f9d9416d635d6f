#!/usr/bin/env bash
# A reproduction longer than one device call (10 min) and longer than one session's device time:
# it runs in its own process session (setsid), so it outlives the call that started it, and the
# notebook checkpoints it (-p checkpoint_dir: every epoch and every 1000 steps). Later calls of
# the same session watch it; each call ends by copying the checkpoint folder, the log and, once
# finished, the results back, so a run cut short (session over, machine taken back) resumes in
# a later session from the copy: carry it and pass it to `start` as CKPT_IN.
#
#   bash reproductions/gpu_long_run.sh start CARRY OUT SECONDS NAME CKPT_IN [snnkit reproduce args]
#   bash reproductions/gpu_long_run.sh watch OUT SECONDS NAME
#
# CARRY: wheels and MNIST (tools/gpu_mnist_setup.sh). CKPT_IN: a folder of an earlier session's
# checkpoint files, or "-" for a fresh run. SECONDS: how long this call watches (end it well inside
# the call's limit and the session's device time). OUT receives ckpt.tar (the checkpoint folder),
# NAME.log, progress.txt and, when the run has finished, run.json and metrics.json.
# DRY=1 (with start): a CPU run on stand-in data, for testing this script (tests/test_gpu_long_run.py).
# LONG_ROOT (default /tmp/long): where the run, its checkpoint and log live; POLL: seconds between looks
# (20); PYTHON (default python3): the interpreter.
set -u
mode=${1:?start or watch}; shift
if [ "$mode" = start ]; then
  carry=${1:?carry}; shift
fi
out=${1:?out}; secs=${2:?seconds}; name=${3:?name}; shift 3
root=${LONG_ROOT:-/tmp/long}; poll=${POLL:-20}; py=${PYTHON:-python3}
ck=$root/ckpt/$name; runs=$root/runs/$name; log=$root/$name.log
T0=$(date +%s)
mkdir -p "$out" "$ck" "$root/runs"

if [ "$mode" = start ]; then
  ckpt_in=${1:?CKPT_IN or -}; shift
  if [ "${DRY:-0}" = 1 ]; then
    export PYTHONPATH=$PWD SNNKIT_DATA=$root/dry_data PYTHONUNBUFFERED=1 SNNKIT_OFFLINE=1
  else
    source tools/gpu_mnist_setup.sh "$carry" > "$root/setup.log" 2>&1
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  fi
  if [ "$ckpt_in" != - ]; then cp -v "$ckpt_in"/* "$ck"/; fi
  echo "tree $(cat REVISION 2>/dev/null || echo unknown); started $(date -u +%FT%TZ)" | tee -a "$log"
  # its own session: the process is not killed when this call returns
  setsid nohup "$py" -m snnkit.reproduce "$name" --executor plain "$@" -p checkpoint_dir "$ck" \
    --out "$runs" >> "$log" 2>&1 < /dev/null &
  echo $! > "$root/$name.pid"
fi

pid=$(cat "$root/$name.pid")
progress() {   # epoch, step and training seconds of each checkpoint, from the Trainer's metadata
  "$py" - "$ck" <<'PY'
import json, sys, time, pathlib, numpy as np
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.npz")):
    with np.load(p) as z:
        m = json.loads(bytes(z["meta"]).decode())
    h = m["history"]
    acc = h.get("train_acc", h.get("acc", [None]))[-1:] if h else None
    print(f"{time.strftime('%H:%M:%S')} {p.name}: epoch {m['epoch']}, step {m['step']}, batch {m['batch']}, "
          f"train s {sum(h.get('time', [])):.1f}, last train acc {acc}")
PY
}
while kill -0 "$pid" 2>/dev/null && [ $(( $(date +%s) - T0 )) -lt "$secs" ]; do
  sleep "$poll"
  progress | tee -a "$out/progress.txt"
done
if kill -0 "$pid" 2>/dev/null; then echo "still running after $secs s (pid $pid)"; else echo "finished"; fi
tail -n 15 "$log"
tar cf "$out/ckpt.tar" -C "$root/ckpt" "$name"
cp "$log" "$out/"
for f in run.json metrics.json; do [ -f "$runs/$f" ] && cp "$runs/$f" "$out/"; done
ls -la "$out"
