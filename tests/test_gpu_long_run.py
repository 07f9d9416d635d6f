"""reproductions/gpu_long_run.sh, the way the GPU machine runs it, on a CPU with DRY=1 (stand-in data):
a run started under setsid is watched until it finishes and hands back its checkpoint, log, progress
and results; a later `start` given that checkpoint (CKPT_IN) resumes from it instead of training anew.
(How the 100-epoch conv reproduction crossed three device sessions: reproductions/recorded/bats_mnist_conv.json.)"""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "reproductions" / "gpu_long_run.sh"
ARGS = ["--stand-in", "-p", "epochs", "1", "-p", "n_train", "40", "-p", "n_test", "40", "-p", "dts_ms", "[0]"]
NAME = "bats_mnist_multi_spike"

pytestmark = pytest.mark.slow


def start(root, out, ckpt_in):
    env = {**os.environ, "DRY": "1", "LONG_ROOT": str(root), "POLL": "1", "SNNKIT_BACKEND": "numpy",
           "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(SCRIPT), "start", "-", str(out), "240", NAME, str(ckpt_in), *ARGS],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_long_run_hands_back_its_checkpoint_and_resumes_from_it(tmp_path):
    out1 = tmp_path / "out1"
    text = start(tmp_path / "long1", out1, "-")
    assert "finished" in text and "still running" not in text
    assert {p.name for p in out1.iterdir()} == {"ckpt.tar", f"{NAME}.log", "progress.txt", "run.json", "metrics.json"}
    run = json.loads((out1 / "run.json").read_text())
    assert run["dataset_stand_in"] and run["parameters"]["epochs"] == 1
    assert run["parameters"]["checkpoint_dir"] == str(tmp_path / "long1" / "ckpt" / NAME)
    assert "epoch 1, step 1," in (out1 / "progress.txt").read_text()     # the checkpoint's own metadata
    with tarfile.open(out1 / "ckpt.tar") as t:
        names = set(t.getnames())
        t.extractall(tmp_path / "in")
    assert {f"{NAME}/dt_0ms_seed0.npz", f"{NAME}/dt_0ms_seed0.json"} <= names

    # a later session: a fresh root, the copied-back checkpoint as CKPT_IN
    out2 = tmp_path / "out2"
    start(tmp_path / "long2", out2, tmp_path / "in" / NAME)
    log = (out2 / f"{NAME}.log").read_text()
    assert "training from scratch" in (out1 / f"{NAME}.log").read_text()
    assert "finished in an earlier session, loaded from" in log and "training from scratch" not in log
    assert json.loads((out2 / "metrics.json").read_text()) == json.loads((out1 / "metrics.json").read_text())
