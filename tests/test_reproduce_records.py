"""Sentences that quote a recorded run are checked against its record: the S3GD Fashion-MNIST run at
the paper's settings and the SHD stand-in pipeline check (reproductions/recorded/), as quoted in the
registry, benchmarks/RESULTS.md and `snnkit reproduce --list`. A rerun that changes a record makes
these fail until the text follows."""
import json
import os
import math
from pathlib import Path

import numpy as np
import pytest

from snnkit import reproduce

ROOT = Path(__file__).resolve().parent.parent
RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text()


def record(name):
    return json.loads((ROOT / "reproductions" / "recorded" / f"{name}.json").read_text())


def entry(name):
    return reproduce.get(name)


def section(title):
    """The text of one RESULTS.md section (``title`` starts with its heading's hashes), from its heading
    to the next heading of its level or above."""
    assert RESULTS.count("\n" + title) == 1, title
    hashes = title.split(" ", 1)[0]
    rest = RESULTS[RESULTS.index("\n" + title) + 1:]
    ends = [rest.find("\n" + "#" * n + " ", 1) for n in range(1, len(hashes) + 1)]
    ends = [e for e in ends if e > 0]
    return rest[:min(ends)] if ends else rest


def test_fashion_record_is_the_registry_run_and_within_the_paper_spread():
    rec, rep = record("s3gd_fashion_mnist"), entry("s3gd_fashion_mnist")
    params = {k: v for k, v in rec["parameters"].items() if k != "results_dir"}
    assert params == rep.parameters                                 # the registry's settings, no -p
    assert " -p " not in rec["command"] and not rec["dataset_stand_in"]
    m, paper = rec["metrics"], rep.target["value"]
    # "within the run-to-run spread ... about half a point" and "sparse >= dense"
    assert rec["within_paper_spread"] is (abs(m["test_accuracy_sparse"] - paper) <= 0.5)
    assert m["test_accuracy_sparse"] >= m["test_accuracy_dense"]
    assert rec["earlier_run"]["metrics"]["test_accuracy_sparse"] < m["test_accuracy_sparse"] - 1.5


def test_fashion_numbers_quoted_where_they_are_used():
    rec = record("s3gd_fashion_mnist")
    m = rec["metrics"]
    sp, de = f"{m['test_accuracy_sparse']:.2f}", f"{m['test_accuracy_dense']:.2f}"
    secs = f"{rec['seconds']:.1f} s"
    t_sp, t_de = f"{m['train_seconds_sparse']:.1f} s", f"{m['train_seconds_dense']:.1f} s"
    why = section("#### S3GD Fashion-MNIST: why 80.7% and not 82.7%")
    row = next(line for line in RESULTS.splitlines() if line.startswith("| **s3gd_fashion_mnist, the paper's settings**"))
    gpu_time = entry("s3gd_fashion_mnist").expected_gpu_time
    for text in (why, row, gpu_time, rec["analysis"]):
        assert sp in text and de in text, text[:120]
    for text in (why, row, gpu_time):
        assert secs in text or secs.replace(" s", "") in text, text[:120]
        assert t_sp.replace(" s", "") in text and t_de.replace(" s", "") in text
    steps = 100 * math.ceil(60000 / 256)
    assert "23 500 steps" in why and steps == 23500
    assert f"{1e3 * m['train_seconds_sparse'] / steps:.2f} / {1e3 * m['train_seconds_dense'] / steps:.2f} ms" in why
    listing = reproduce.format_list([entry("s3gd_fashion_mnist")], records={"s3gd_fashion_mnist": {
        **rec, "source": "recorded"}})
    assert f"GPU time: measured: {rec['seconds']:g} s on {rec['device']}" in listing


def test_shd_stand_in_is_a_pipeline_check_everywhere():
    rec, rep = record("s3gd_shd_delta_sweep"), entry("s3gd_shd_delta_sweep")
    assert rec["dataset_stand_in"] and rec["metrics"]["dataset_stand_in"] and rec["pipeline_check"]
    assert "--stand-in" in rec["command"] and rec["why_stand_in"]
    rows = reproduce.comparison([rep], {rep.name: {**rec, "source": "recorded"}})
    assert reproduce.pipeline_checks(rows) and not reproduce.paper_comparable(rows)
    line = reproduce.gpu_time(rep, {**rec, "source": "recorded"})
    assert line.startswith("estimate") and "stand-in pipeline check" in line
    # full size except the epochs, and the record says so
    params = {k: v for k, v in rec["parameters"].items() if k not in ("results_dir", "dataset_stand_in", "epochs")}
    assert params == {k: v for k, v in rep.parameters.items() if k != "epochs"}
    ep = rec["parameters"]["epochs"]
    assert ep < rep.parameters["epochs"] and rec["reduced"]["epochs"].startswith(f"{ep} (registry: {rep.parameters['epochs']})")
    assert f"**{ep} of the registry's\n{rep.parameters['epochs']} epochs**" in RESULTS \
        or f"**{ep} of the registry's {rep.parameters['epochs']} epochs**" in RESULTS.replace("\n", " ")


def test_shd_time_estimate_follows_from_the_pipeline_check():
    rec, rep = record("s3gd_shd_delta_sweep"), entry("s3gd_shd_delta_sweep")
    m, prof = rec["metrics"], rec["profile"]["s3gd_shd"]
    n_train, batch = 8156, rep.parameters["batch_size"]
    steps = (1 + len(rep.parameters["deltas"])) * rep.parameters["epochs"] * math.ceil(n_train / batch)
    assert steps == 44800
    ep = rec["parameters"]["epochs"]
    per_step_run = m["train_seconds_dense"] / (ep * math.ceil(n_train / batch))      # with the test pass
    lo, hi = steps * prof["plain_ms_per_step"] / 1e3 / 60, steps * per_step_run / 60
    quoted = f"{prof['plain_ms_per_step']:.0f}-{1e3 * per_step_run:.0f} ms per step"
    span = f"{lo:.0f}-{hi:.0f} min"
    for text in (rep.expected_gpu_time, rec["analysis"], section("### S3GD: the loop after the one-launch")):
        assert quoted in text and span in text, text[:100]
    assert f"{steps * prof['step_ms'] / 1e3 / 60:.1f} min" in section("### S3GD: the loop after the one-launch")


@pytest.mark.parametrize("config", ["s3gd_sparse", "s3gd_dense", "s3gd_shd"])
def test_profile_rows_quote_the_recorded_profile(config):
    prof = record("s3gd_shd_delta_sweep")["profile"][config]
    rows = [line for line in section("### S3GD: the loop after the one-launch").splitlines() if line.startswith("| S3GD")]
    row = rows[["s3gd_sparse", "s3gd_dense", "s3gd_shd"].index(config)]
    assert f"{prof['step_ms']:.3f} ms" in row
    assert f"{prof['plain_ms_per_step']:.3f} ms ({prof['ratio_plain']:.2f}x)" in row
    if "ratio_device" in prof:
        assert f"{prof['device_ms_per_step']:.3f} ms ({prof['ratio_device']:.2f}x)" in row
        assert f"{prof['device_previous_check_ms_per_step']:.3f} ms ({prof['ratio_device_previous_check']:.2f}x)" in row
        # the sentence "within the bound" / "not within the bound" follows the ratio
        within = prof["ratio_device"] <= 1.3
        name = "Sparse Fashion" if config == "s3gd_sparse" else "Dense Fashion"
        said = section("### S3GD: the loop after the one-launch").split(f"**{name}: ", 1)[1]
        assert said.startswith("within the bound") is within and said.startswith("not within") is not within


def test_list_says_measured_or_estimated_for_every_entry():
    """Issue 16 item 3: `--list` says of every entry whether its GPU time is measured (a real-data
    record) or estimated; with the repository's records, SHD is the only estimate (stand-in only)."""
    reps = reproduce.list_reproductions()
    records = reproduce.recorded_results(ROOT / "no-such-results-folder")
    lines = {r.name: reproduce.gpu_time(r, records.get(r.name)) for r in reps}
    for name, line in lines.items():
        assert line.startswith(("measured", "estimate")), (name, line)
    assert [n for n, line in lines.items() if line.startswith("estimate")] == ["s3gd_shd_delta_sweep"]


def test_epoch_protocol_script_records_every_epoch(tmp_path):
    """reproductions/bats_epoch_protocol.py (the public code's protocol: the test set after every epoch)
    on the embedded digits: one test accuracy per epoch per seed, best = their maximum, last = the final
    one, and the seeds give different runs."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "p.json"
    env = {**os.environ, "PYTHONPATH": str(root), "SNNKIT_BACKEND": "numpy"}
    r = subprocess.run([sys.executable, str(root / "reproductions" / "bats_epoch_protocol.py"), "--dataset", "digits",
                        "--epochs", "2", "--n-train", "300", "--seeds", "0", "3", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert [run["seed"] for run in res["runs"]] == [0, 3]
    for run in res["runs"]:
        acc = run["test_accuracy_by_epoch"]
        assert len(acc) == 2 and run["last"] == acc[-1] and run["best"] == max(acc)
        assert run["best_epoch"] == 1 + acc.index(max(acc)) and run["n_train"] == 300
    assert res["runs"][0]["test_accuracy_by_epoch"] != res["runs"][1]["test_accuracy_by_epoch"]   # seeds differ
    assert "not the paper's data set" in r.stdout


def test_single_spike_gap_analysis_follows_its_protocol_runs():
    """The single-spike record's analysis splits the gap to the paper with the epoch-protocol runs
    (reproductions/bats_epoch_protocol.py): every number it quotes is computed here from the runs."""
    rec = record("bats_mnist_single_spike")
    pro, paper, ours = rec["epoch_protocol"], rec["target"]["value"], rec["metrics"]["test_accuracy"]
    last = [r["last"] for r in pro["runs"]]
    best = [r["best"] for r in pro["runs"]]
    assert len(pro["runs"]) >= 3 and all(b >= a for a, b in zip(last, best))
    assert round(sum(last) / len(last), 2) == pro["last_mean"] and round(sum(best) / len(best), 2) == pro["best_mean"]
    gap, explained = paper - ours, pro["best_mean"] - pro["last_mean"]
    text = rec["analysis"]
    for s in (f"{ours:.2f}%", f"{gap:.2f} points", f"{pro['last_mean']:.2f}%", f"{pro['best_mean']:.2f}%",
              f"{min(last):.2f}-{max(last):.2f}%", f"{min(best):.2f}-{max(best):.2f}%",
              f"explains {explained:.2f} of the {gap:.2f} points", f"{gap - explained:.2f} points remain"):
        assert s in text, s
    assert max(last) < paper and max(best) < paper        # "not seed noise", and a gap remains
    # the public code run by its own loop (reproductions/bats_public_ttfs.py): its best, its fall, and ours beside it
    pub = rec["public_code"]
    for r in pub["runs"]:
        acc = r["test_accuracy_by_epoch"]
        assert len(acc) == 30 and r["best"] == max(acc) and r["best_epoch"] == 1 + acc.index(max(acc)) and r["last"] == acc[-1]
        fall = pub["falls_to_chance_at_epoch"][pub["runs"].index(r)]
        assert min(acc[:fall - 1]) > 90 and max(acc[fall - 1:]) < 12      # above 90 % until it falls, chance after
    (b0, b1), runs = pub["best_range"], pub["runs"]
    assert [b0, b1] == sorted(r["best"] for r in runs) and b1 < paper
    for s in (f"is {runs[0]['best']:.2f}% and {runs[1]['best']:.2f}% (epochs {runs[0]['best_epoch']} and {runs[1]['best_epoch']})",
              f"{paper - b1:.2f}-{paper - b0:.2f} points under the paper",
              f"fall to chance in epoch {pub['falls_to_chance_at_epoch'][0]}",
              f"ours lies {b0 - max(best):.2f}-{b1 - min(best):.2f} points below it",
              f"our seed-to-seed range {max(best) - min(best):.2f} points"):
        assert s in text, s
    assert len(set(pub["falls_to_chance_at_epoch"])) == 1                  # "both runs ... in epoch 22"
    sec = section("### The public BATS code on the single-spike task (issue 16), NVIDIA H200, 2026-12-03")
    f = pub["falls_to_chance_at_epoch"][0]
    for r in runs:
        acc = r["test_accuracy_by_epoch"]
        assert (f"| {r['seed']} | {r['best']:.2f} % (epoch {r['best_epoch']}) | {acc[f - 2]:.2f} % | {acc[f - 1]:.2f} % | "
                f"{r['last']:.2f} % | {r['seconds']:.1f} s |") in sec
    flat = " ".join(sec.split())
    for said in (f"is {b0:.2f}-{b1:.2f} %, {paper - b1:.2f}-{paper - b0:.2f} points under", f"fall to chance in epoch {f}",
                 f"ours gives {min(best):.2f}-{max(best):.2f} %", f"{b0 - max(best):.2f}-{b1 - min(best):.2f} points below",
                 f"seed-to-seed range: {max(best) - min(best):.2f} points"):
        assert said in flat, said
    row = next(line for line in RESULTS.splitlines() if line.startswith("| bats_mnist_single_spike | MNIST |"))
    assert f"the public code's own loop: {b0:.2f}-{b1:.2f} %" in row


FULL_SECTION = "### The full-length BATS runs: conv and multi-spike, 100 epochs each (issue 16), NVIDIA H200, 2026-12-03"


@pytest.mark.parametrize("name", ["bats_mnist_conv", "bats_mnist_multi_spike"])
def test_full_length_bats_record_is_the_registry_run(name):
    """The 100-epoch records: the registry's settings except dts_ms [0] (said in `reduced`), on real
    MNIST; the accuracy is the notebook's dt = 0 row; the training time is the sum of the 100 per-epoch
    times the record keeps; a run resumed across device sessions sums its segments."""
    rec, rep = record(name), entry(name)
    params = {k: v for k, v in rec["parameters"].items() if k not in ("results_dir", "checkpoint_dir", "dts_ms")}
    assert params == {k: v for k, v in rep.parameters.items() if k != "dts_ms"} and params["epochs"] == 100
    assert rec["parameters"]["dts_ms"] == [0] and set(rec["reduced"]) == {"dts_ms"}
    assert not rec["dataset_stand_in"] and rec["metrics"]["n_train_samples"] == 60000
    m = rec["metrics"]
    assert m["test_accuracy"] == m["accuracy_by_dt"][0]
    hist = rec["epoch_history"]
    assert len(hist["train_acc"]) == len(hist["epoch_seconds"]) == 100
    assert abs(sum(hist["epoch_seconds"]) - rec["train_seconds"]) < 0.06
    if "segments" in rec:
        assert rec["seconds"] == round(sum(s["wall_seconds"] for s in rec["segments"]), 1)
        assert rec["segments"][-1]["wall_seconds"] == rec["seconds_last_segment"]
        per = [v for s in rec["segments"] for k, v in s.items() if k.startswith("train_seconds_epochs_")]
        assert len(per) == len(rec["segments"]) and abs(sum(per) - rec["train_seconds"]) < 0.2
    # the --list line is the record's, and says when it was resumed
    listing = reproduce.format_list([rep], records={name: {**rec, "source": "recorded"}})
    assert f"GPU time: measured: {rec['seconds']:g} s" in listing
    assert ("in 3 device sessions, resumed from its checkpoints" in listing) is ("segments" in rec)
    assert rec["earlier_run"]["test_accuracy"] != m["test_accuracy"]


def test_full_length_bats_numbers_quoted_where_they_are_used():
    text = section(FULL_SECTION)
    conv, multi = record("bats_mnist_conv"), record("bats_mnist_multi_spike")
    for rec in (conv, multi):
        acc, paper = rec["metrics"]["test_accuracy"], rec["paper_value"]
        per_epoch = rec["train_seconds"] / 100
        for where in (text, entry(rec["name"]).expected_gpu_time, rec["analysis"]):
            assert f"{acc:.2f}" in where and f"{rec['train_seconds']:.1f} s" in where, where[:80]
        for where in (text, entry(rec["name"]).expected_gpu_time):
            assert f"{rec['seconds']:.1f} s" in where
        assert f"{paper} %" in text and f"**{acc:.2f} %**" in text
        assert (f"{per_epoch:.1f} s" in text) or (f"{per_epoch:.2f} s" in text)
    # conv: equal to the paper at its one decimal; the per-session split is the checkpoint's
    assert conv["within_paper_spread"] is (round(conv["metrics"]["test_accuracy"], 1) == conv["paper_value"])
    assert "the paper's number" in text and conv["within_paper_spread"]
    for s in conv["segments"]:
        tr = next(v for k, v in s.items() if k.startswith("train_seconds_epochs_"))
        assert f"{tr:.1f} s" in text and f"{s['wall_seconds']:.1f}" in text
    ea = conv["epoch_history"]["train_acc"]
    assert f"{100 * ea[9]:.2f} % at epoch 10" in text and f"{100 * ea[49]:.2f} % at epochs 50 and 100" in text
    assert round(100 * ea[49], 2) == round(100 * ea[-1], 2)
    # multi-spike: the gap, held to the seed-to-seed range of the single-spike protocol runs
    gap = multi["paper_value"] - multi["metrics"]["test_accuracy"]
    last = [r["last"] for r in record("bats_mnist_single_spike")["epoch_protocol"]["runs"]]
    rng = round(max(last) - min(last), 2)
    assert multi["seed_range_points"] == rng and multi["within_paper_spread"] is (gap <= rng)
    assert f"{gap:.2f} points under the paper" in text and f"{rng:.2f} points over three seeds" in text
    assert f"({rng:.2f} points: {min(last):.2f}-{max(last):.2f}%" in multi["analysis"]
    mh = multi["epoch_history"]["train_acc"]
    assert f"{100 * mh[9]:.2f} % at epoch 10, {100 * mh[-1]:.2f} % at epoch 100" in text
    assert f"{multi['earlier_run']['test_accuracy']:.2f} %" in text
    assert multi["earlier_run"]["test_accuracy"] > multi["metrics"]["test_accuracy"]   # "do not raise"


def test_dt_sweep_seeds_quoted_where_they_are_used():
    """The dt sweep's three seeds under the study's grid rules (record `by_seed`): each seed is its run's
    metrics, and the RESULTS.md table, the record's analysis and the sentences "eleven of twelve inside the
    band", "the collapse at the study's step", "training falls from the first epoch to the last", "the
    continuous weights keep 94.0-97.5 %" follow from the numbers."""
    rec = record("time_discretization_sweep")
    runs, fork = rec["by_seed"], rec["fork"]
    assert [r["seed"] for r in runs] == [r["seed"] for r in rec["runs"]] == [0, 1, 2]
    assert "caveat" not in rec                                   # made with the rules the study's code uses
    for r, run in zip(runs, rec["runs"]):
        m = run["metrics"]
        assert r["dt_ms"] == [int(d) for d in m["dts_ms"]] and r["trained"] == [round(a, 2) for a in m["accuracy_by_dt"]]
        assert r["spikes_per_sample_hidden"] == [round(x, 1) for x in m["spikes_per_sample_1:LIFDense"]]
        assert f"-p seed {r['seed']} " in run["command"]
    assert rec["metrics"] == rec["runs"][0]["metrics"] and rec["seconds"] == rec["runs"][0]["seconds"]

    def at(key, d, rows=runs):
        return [r[key][r["dt_ms"].index(d)] for r in rows if d in r["dt_ms"]]
    lo, hi = fork["band_percent"]
    band = [a for d in (1, 4, 6, 7) for a in at("trained", d)]
    inside = sum(lo <= a <= hi for a in band)
    a8, a10 = at("trained", 8), at("trained", 10)
    assert inside == 11 and len(band) == 12 and max(band) > hi
    assert rec["within_paper_spread"] is all(lo <= a <= hi for a in at("trained", 1)) is True
    assert max(a8) < lo and all(a < min(a8) for a in a10)        # the collapse comes at 8 ms, as in the study
    c0, c1 = fork["collapse_percent"]
    assert sum(c0 <= a <= c1 for a in a8) == 1                   # "one of them is inside its 55-60 %"
    text = section("### The dt sweep under the study's grid rules, three seeds (issue 16), NVIDIA H200, 2026-12-03")
    for r in runs:
        row = next(line for line in text.splitlines() if line.startswith(f"| {r['seed']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:8] == [f"{a:.2f} %" for a in r["trained"]], row
        c8, c10 = r["continuous_weights_on_grid"][5:7]
        assert cells[8] == f"{c8:.1f} / {c10:.1f} %", row
    run_only = at("continuous_weights_on_grid", 8) + at("continuous_weights_on_grid", 10)
    h8 = [r["train_accuracy_by_epoch"]["8"] for r in runs]
    assert all(max(h) == h[0] and h[-1] < h[0] for h in h8)       # "falls from the first epoch to the last"
    for said in (f"lie in {min(band):.2f}-{max(band):.2f} %: eleven", f"{max(band) - hi:.2f} points above its top",
                 f"At 8 ms we get {min(a8):.2f}-{max(a8):.2f} %", f"at 10 ms {min(a10):.2f}-{max(a10):.2f} %",
                 f"keep {min(run_only):.1f}-{max(run_only):.1f} %", f"spread {max(a8) - min(a8):.2f} points at 8 ms",
                 ", ".join(f"{100 * h[0]:.1f} -> {100 * h[-1]:.1f} %" for h in h8)):
        assert said in " ".join(text.split()), said
    for said in (f"score {min(band):.2f}-{max(band):.2f}% ({inside} of {len(band)} values inside",
                 f"8 ms gives {min(a8):.2f}-{max(a8):.2f}%", f"10 ms {min(a10):.2f}-{max(a10):.2f}%"):
        assert said in rec["analysis"], said
    row = next(line for line in RESULTS.splitlines() if line.startswith("| time_discretization_sweep | MNIST |"))
    assert (f"1 ms {min(at('trained', 1)):.2f}-{max(at('trained', 1)):.2f}, 1-7 ms {min(band):.2f}-{max(band):.2f}, "
            f"8 ms {min(a8):.2f}-{max(a8):.2f}, 10 ms {min(a10):.2f}-{max(a10):.2f} %") in row
    # the earlier rule: its table (the section before) and "run-only accuracies almost unchanged"
    early = rec["earlier_rule"]["by_seed"]
    assert [r["seed"] for r in early] == [0, 1, 2]
    e7, e8 = at("trained", 7, early), at("trained", 8, early)
    assert all(a < lo for a in e7) and max(e8) < min(a8)
    assert f"same seeds gave {min(e7):.2f}-{max(e7):.2f} % at 7 ms and {min(e8):.2f}-{max(e8):.2f} % at 8 ms" in " ".join(text.split())
    for d in (7, 8):
        pairs = [(a, b) for a, b in zip(at("continuous_weights_on_grid", d, early), at("continuous_weights_on_grid", d))
                 if a is not None]
        assert len(pairs) == 3 and all(abs(a - b) <= 0.2 for a, b in pairs), (d, pairs)
    before = section("### The full-length BATS runs: conv and multi-spike, 100 epochs each (issue 16), NVIDIA H200, 2026-12-03")
    for r in early[1:]:
        row = next(line for line in before.splitlines() if line.startswith(f"| {r['seed']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:5] == [f"{a:.2f} %" for a in r["trained"]], row


def test_a_records_caveat_reaches_the_comparison_row():
    """A record made before a correction of the code says so (`caveat`); the comparison row carries it
    (notebook 07 prints it beside the number), and a record without one gives ""."""
    rep = entry("time_discretization_sweep")
    rec = {**record("time_discretization_sweep"), "source": "recorded"}
    rows = reproduce.comparison([rep], {rep.name: {**rec, "caveat": "made before X"}})
    assert rows[0]["caveat"] == "made before X"
    rows = reproduce.comparison([rep], {rep.name: {k: v for k, v in rec.items() if k != "caveat"}})
    assert rows[0]["caveat"] == ""
    assert reproduce.comparison([rep], {})[0]["caveat"] == ""
    listing = reproduce.format_list([rep], records={rep.name: {**rec, "caveat": "made before X"}})
    assert "    caveat:   made before X\n" in listing
    assert "caveat" not in reproduce.format_list([rep], records={rep.name: {k: v for k, v in rec.items() if k != "caveat"}})


def test_public_ttfs_driver_encodes_as_the_public_dataset():
    """reproductions/bats_public_ttfs.py (the public BATS code on the single-spike task; needs a GPU to
    train): its encoder is the public Dataset's ``__to_spikes``: t = 0.1 (1 - p/255), a pixel of 0 silent,
    and it refuses pixels outside [0, 1] instead of clipping them."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bats_public_ttfs", ROOT / "reproductions" / "bats_public_ttfs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    p = np.array([[0, 1, 128, 255]], dtype=np.float64)
    t, c = mod.encode(p / 255)
    assert t.shape == (1, 4, 1) and t.dtype == np.float32 and c.dtype == np.int32
    np.testing.assert_allclose(t[0, 1:, 0], 0.1 * (1 - p[0, 1:] / 255), rtol=1e-6)
    assert np.isinf(t[0, 0, 0]) and list(c[0]) == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="divide 8-bit images by 255"):
        mod.encode(p)
