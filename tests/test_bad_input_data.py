"""Issue 15, data and the command line: encoders, data sets, the read-only cache, spike
containers, and `snnkit reproduce` never losing a previous result."""
import json
import os

import numpy as np
import pytest

from snnkit import datasets
from snnkit.datasets import download, latency, log_latency, poisson, direct
from snnkit.spikes import SpikeTrains, from_lists, from_raster

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.mark.parametrize("kw,msg", [(dict(n_steps=0), "n_steps must be >= 1"), (dict(dt=0), "dt must be > 0"),
                                    (dict(dt=np.inf), "dt must be a finite number"),
                                    (dict(n_steps=2.5), "n_steps must be an integer")])
def test_shd_zero_steps_or_dt_are_refused_not_replaced_by_defaults(kw, msg):
    with pytest.raises(ValueError, match=msg):
        datasets.load("shd", "test", stand_in=True, limit=2, **kw)


def test_shd_explicit_settings_are_kept():
    d = datasets.load("shd", "test", stand_in=True, limit=2, n_steps=7, dt=0.01)
    assert (d.x.n_steps, d.x.dt) == (7, 0.01)
    assert d.x.rebin(dt=0.02).n_steps == 7
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        d.x.rebin(n_steps=0)


@pytest.mark.parametrize("encode", [lambda x: latency(x), lambda x: log_latency(x, n_steps=5),
                                    lambda x: poisson(x, n_steps=5), lambda x: direct(x, n_steps=3)])
def test_encoders_return_an_empty_batch_for_an_empty_input(encode):
    out = encode(np.zeros((0, 4)))
    shape = out.times.shape if isinstance(out, SpikeTrains) else out.shape
    assert shape[0] == 0


@pytest.mark.parametrize("encode,msg", [
    (lambda x: log_latency(x, n_steps=0), "n_steps must be >= 1"),
    (lambda x: poisson(x, n_steps=0), "n_steps must be >= 1"),
    (lambda x: direct(x, n_steps=0), "n_steps must be >= 1"),
    (lambda x: latency(x, t_max=np.inf), "t_max must be a finite number"),
    (lambda x: poisson(x, max_prob=1.5), r"max_prob must lie in \[0, 1\]"),
    (lambda x: log_latency(x, threshold=1.0), r"threshold must lie in \[0, 1\)"),
    (lambda x: latency(x + 0j), "x is complex"),
    (lambda x: latency(x, dtype=np.int32), "dtype must be np.float32 or np.float64"),
])
def test_encoder_settings(encode, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        encode(np.full((2, 4), 0.5))


def test_embedded_sets_refuse_options_clearly():
    with pytest.raises(ValueError, match=r"digits is embedded and takes no options; got \['limit'\]"):
        datasets.load("digits", limit=5)
    with pytest.raises(TypeError, match="name must be a data set name"):
        datasets.load(3)


def test_spike_containers_check_their_invariant():
    t = np.array([[[0.1, np.inf], [0.2, 0.3]]])
    with pytest.raises(ValueError, match="counts disagrees"):
        SpikeTrains(t, np.array([[1, 1]])).validate()
    with pytest.raises(ValueError, match="negative times"):
        SpikeTrains(-t, np.array([[1, 2]])).validate()
    SpikeTrains(t, np.array([[1, 2]])).validate()
    with pytest.raises(ValueError, match="raster must hold 0/1 spikes"):
        from_raster(np.full((1, 3, 2), 2.0), dt=1e-3)
    with pytest.raises(ValueError, match="dt must be > 0"):
        from_raster(np.zeros((1, 3, 2)), dt=0)
    with pytest.raises(ValueError, match=r"trains\[0\]\[0\] spike time must be a finite number"):
        from_lists([[[np.nan]]])


def _spec(data):
    import hashlib
    return download.RemoteFile("f.bin", ("http://nowhere.invalid/f.bin",), hashlib.sha256(data).hexdigest(),
                               size=len(data))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_cache_with_a_correct_file_loads_without_the_stamp(tmp_path, monkeypatch):
    data = b"snnkit" * 100
    (tmp_path / "f.bin").write_bytes(data)
    tmp_path.chmod(0o555)
    try:
        monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
        with pytest.warns(RuntimeWarning, match="stamp cannot be written"):
            assert download.fetch(_spec(data)) == tmp_path / "f.bin"
    finally:
        tmp_path.chmod(0o755)


def test_stamp_that_cannot_be_written_is_a_warning_not_an_error(tmp_path, monkeypatch):
    # the same as above, for machines where tests run as root (permissions do not apply there)
    data = b"snnkit" * 100
    (tmp_path / "f.bin").write_bytes(data)
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))

    def read_only(*a, **k):
        raise PermissionError(13, "Read-only file system")
    monkeypatch.setattr(download, "_write_stamp", read_only)
    with pytest.warns(RuntimeWarning, match="correct, but its '.verified' stamp cannot be written"):
        assert download.fetch(_spec(data)) == tmp_path / "f.bin"


def test_read_only_cache_without_the_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    monkeypatch.setattr(download.os, "access", lambda p, mode: False)
    with pytest.raises(download.DatasetUnavailable, match="cannot be written.*read-only.*SNNKIT_DATA"):
        download.fetch(_spec(b"x"))


# ------------------------------------------------------------------ snnkit reproduce
nbformat = pytest.importorskip("nbformat")


def _setup(tmp_path):
    from test_reproduce import make_notebook, make_registry
    nbs = tmp_path / "notebooks"
    make_notebook(nbs)
    return make_registry(tmp_path), nbs


def test_unknown_parameter_does_not_touch_a_previous_result(tmp_path):
    from snnkit import reproduce
    reg, nbs = _setup(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"test_accuracy": 0.9}')
    with pytest.raises(ValueError, match=r"\['typo'\] are not declared"):
        reproduce.run("tiny", {"typo": 1}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    assert json.loads((out / "metrics.json").read_text()) == {"test_accuracy": 0.9}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "out", "registry.json"]


def test_a_rerun_never_deletes_the_previous_result(tmp_path):
    from snnkit import reproduce
    reg, nbs = _setup(tmp_path)
    out = tmp_path / "out"
    first = reproduce.run("tiny", {"n": 1}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    second = reproduce.run("tiny", {"n": 4}, out, registry=reg, notebooks=nbs, executor="plain", progress=False)
    assert json.loads((out / "metrics.json").read_text())["n"] == 1            # kept as it was
    new = [p for p in tmp_path.iterdir() if p.name.startswith("out-")]
    assert len(new) == 1 and json.loads((new[0] / "metrics.json").read_text())["n"] == 4
    assert second["parameters"]["results_dir"] == str(new[0]) and first["metrics"]["n"] == 1
    # the newest run is the one reported
    assert reproduce.recorded_results(tmp_path, tmp_path / "none")["tiny"]["metrics"]["n"] == 4


def test_out_that_is_a_file_is_refused(tmp_path):
    from snnkit import reproduce
    reg, nbs = _setup(tmp_path)
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        reproduce.run("tiny", {}, f, registry=reg, notebooks=nbs, executor="plain", progress=False)
    assert f.read_text() == "keep me"


def test_parameter_of_the_wrong_type_names_parameter_and_type(tmp_path):
    from snnkit import reproduce
    reg, nbs = _setup(tmp_path)
    with pytest.raises(ValueError, match=r"parameter 'n' has an int default \(n = 2 in its parameters cell\); got "
                                         r"the str 'abc'"):
        reproduce.run("tiny", {"n": reproduce.parse_value("abc")}, tmp_path / "o", registry=reg, notebooks=nbs,
                      executor="plain", progress=False)
    assert not (tmp_path / "o").exists()
