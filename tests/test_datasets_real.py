"""Real-data loaders, tested offline on small files in the published formats that the tests write."""
import gzip
import hashlib
import io
import struct
import urllib.error
import zipfile

import numpy as np
import pytest

from snnkit.datasets import download, formats, load, real
from snnkit.datasets.download import ChecksumError, DatasetUnavailable, RemoteFile, fetch
from snnkit.datasets.events import EventData


# ------------------------------------------------------------------ helpers writing real formats
def idx_bytes(arr, compress=True):
    arr = np.asarray(arr, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    return gzip.compress(raw) if compress else raw


def sha(b):
    return hashlib.sha256(b).hexdigest()


def spec_for(path, **kw):
    data = path.read_bytes()
    return RemoteFile(path.name, (path.as_uri(),), sha(data), size=len(data), **kw)


def write_shd(path, times, units, labels):
    import h5py
    with h5py.File(path, "w") as f:
        ft = h5py.vlen_dtype(np.float32)
        ut = h5py.vlen_dtype(np.uint16)
        f.create_dataset("spikes/times", (len(times),), dtype=ft)[...] = [np.asarray(t, np.float32) for t in times]
        f.create_dataset("spikes/units", (len(units),), dtype=ut)[...] = [np.asarray(u, np.uint16) for u in units]
        f["labels"] = np.asarray(labels, np.uint16)
        f["extra/keys"] = np.array([b"zero", b"one"])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("SNNKIT_DATA", str(d))
    monkeypatch.delenv("SNNKIT_OFFLINE", raising=False)
    real._images.cache_clear()
    real._events.cache_clear()
    yield d
    real._images.cache_clear()
    real._events.cache_clear()


# ------------------------------------------------------------------ IDX
def test_idx_roundtrip_plain_and_gzip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    for comp in (True, False):
        p = tmp_path / f"x{comp}.idx"
        p.write_bytes(idx_bytes(a, comp))
        np.testing.assert_array_equal(formats.read_idx(p), a)


def test_idx_truncated_or_corrupt_is_an_error(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(5, 3, 4)
    raw = idx_bytes(a, compress=False)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        formats.read_idx(raw[:-7], "short")                   # data shorter than the header says
    with pytest.raises(ValueError, match="truncated or corrupt"):
        formats.read_idx(raw + b"\0", "long")
    with pytest.raises(ValueError, match="gzip stream"):
        formats.read_idx(gzip.compress(raw)[:-10], "cut gzip")
    with pytest.raises(ValueError, match="magic"):
        formats.read_idx(b"\x01\x02\x08\x01" + raw[4:], "bad magic")
    with pytest.raises(ValueError, match="labels"):
        formats.read_idx_pair(raw, idx_bytes(np.arange(4)), "mismatch")


# ------------------------------------------------------------------ EMNIST
def make_emnist_zip(path, x_upright, y):
    with zipfile.ZipFile(path, "w") as z:
        for part in ("train", "test"):
            z.writestr(f"gzip/emnist-balanced-{part}-images-idx3-ubyte.gz", idx_bytes(x_upright.transpose(0, 2, 1)))
            z.writestr(f"gzip/emnist-balanced-{part}-labels-idx1-ubyte.gz", idx_bytes(y))
        z.writestr("gzip/emnist-balanced-mapping.txt", "0 48\n10 65\n36 97\n")


def test_emnist_archive_is_read_upright(tmp_path):
    x = np.zeros((3, 28, 28), np.uint8)
    x[:, 2, 20] = 255                                           # a mark near the top right
    p = tmp_path / "gzip.zip"
    make_emnist_zip(p, x, np.array([0, 10, 36]))
    xi, y, mapping = formats.read_emnist(p, "balanced", "test")
    np.testing.assert_array_equal(xi, x)
    assert y.tolist() == [0, 10, 36] and mapping == {0: "0", 10: "A", 36: "a"}
    with pytest.raises(ValueError, match="no member"):
        formats.read_emnist(p, "letters", "test")
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        formats.read_emnist(p, "balanced", "test")


# ------------------------------------------------------------------ SHD
def test_shd_layout_parsed_and_checked(tmp_path):
    p = tmp_path / "shd.h5"
    write_shd(p, [[0.1, 0.5], [], [0.2]], [[3, 699], [], [7]], [1, 0, 1])
    off, t, ch, y, keys = formats.read_shd(p)
    assert off.tolist() == [0, 2, 2, 3] and ch.tolist() == [3, 699, 7] and y.tolist() == [1, 0, 1]
    np.testing.assert_allclose(t, [0.1, 0.5, 0.2], rtol=1e-6)
    assert keys == ["zero", "one"]
    write_shd(p, [[0.1]], [[700]], [0])
    with pytest.raises(ValueError, match=r"\[0, 700\)"):
        formats.read_shd(p)
    import h5py
    with h5py.File(p, "w") as f:
        f["labels"] = np.zeros(1)
    with pytest.raises(ValueError, match="spikes/times"):
        formats.read_shd(p)
    write_shd(p, [[0.1] * 1000] * 20, [[1] * 1000] * 20, [0] * 20)
    p.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(ValueError, match="HDF5"):
        formats.read_shd(p)


# ------------------------------------------------------------------ N-MNIST
def test_nmnist_40bit_events_roundtrip_and_overflow():
    rng = np.random.default_rng(1)
    x, y, p = rng.integers(0, 34, 50), rng.integers(0, 34, 50), rng.integers(0, 2, 50)
    t = np.sort(rng.integers(0, 1 << 23, 50))
    got = formats.read_nmnist_bin(formats.write_nmnist_bin(x, y, p, t))
    for a, b in zip(got, (x, y, p, t)):
        np.testing.assert_array_equal(a, b)
    # a y == 240 record is a timestamp-overflow marker: later events gain 2**13 us, and it is no event
    a = formats.write_nmnist_bin([1], [2], [1], [100])
    marker = bytes([0, 240, 0, 0, 0])
    xs, ys, ps, ts = formats.read_nmnist_bin(a + marker + a)
    assert xs.tolist() == [1, 1] and ts.tolist() == [100, 100 + 8192] and ps.tolist() == [1, 1]
    with pytest.raises(ValueError, match="5-byte"):
        formats.read_nmnist_bin(a + a[:3])
    with pytest.raises(ValueError, match="34x34"):
        formats.read_nmnist_bin(bytes([40, 1, 0, 0, 1]))


def make_nmnist_zip(path, split, samples):
    with zipfile.ZipFile(path, "w") as z:
        for i, (label, ev) in enumerate(samples):
            z.writestr(f"{split}/{label}/{i:05d}.bin", formats.write_nmnist_bin(*ev))


def test_nmnist_archive_channels_and_polarity(tmp_path):
    p = tmp_path / "Test.zip"
    make_nmnist_zip(p, "Test", [(3, ([1, 2], [0, 33], [0, 1], [2000, 1000])), (7, ([5], [5], [1], [0]))])
    off, t, ch, y = formats.read_nmnist_zip(p, merge_polarity=False)
    assert y.tolist() == [3, 7] and off.tolist() == [0, 2, 3]
    np.testing.assert_allclose(t, [1e-3, 2e-3, 0.0])             # sorted by time within a sample
    assert ch.tolist() == [34 * 34 + 33 * 34 + 2, 0 * 34 + 1, 34 * 34 + 5 * 34 + 5]
    _, _, chm, _ = formats.read_nmnist_zip(p, merge_polarity=True)
    assert chm.tolist() == [33 * 34 + 2, 1, 5 * 34 + 5]


# ------------------------------------------------------------------ binning
def test_eventdata_binning_matches_a_plain_loop():
    rng = np.random.default_rng(2)
    lens = rng.integers(0, 40, 7)
    off = np.concatenate([[0], np.cumsum(lens)])
    t = rng.uniform(0, 0.06, off[-1])
    ch = rng.integers(0, 9, off[-1])
    for mode in ("binary", "count"):
        d = EventData(off, t, ch, 9, 50, 1e-3, mode)
        idx = np.array([4, 0, 6, 4])
        got = d[idx]
        want = np.zeros((4, 50, 9), np.float32)
        for r, i in enumerate(idx):
            for e in range(off[i], off[i + 1]):
                s = int(np.floor(t[e] / 1e-3))
                if s < 50:
                    want[r, s, ch[e]] = 1 if mode == "binary" else want[r, s, ch[e]] + 1
        np.testing.assert_array_equal(got, want)
        assert d.n_dropped == int((np.floor(t / 1e-3) >= 50).sum()) > 0
    sub = d.subset([6, 2])
    np.testing.assert_array_equal(sub[:], d[[6, 2]])
    np.testing.assert_array_equal(d[3], d[[3]][0])
    assert d.shape == (7, 50, 9) and len(d) == 7


def test_eventdata_rejects_bad_input():
    with pytest.raises(ValueError, match="offsets"):
        EventData([0, 2], [0.1], [1], 4, 10, 1e-3)
    with pytest.raises(ValueError, match="channels"):
        EventData([0, 1], [0.1], [4], 4, 10, 1e-3)
    with pytest.raises(ValueError, match="dt"):
        EventData([0, 1], [0.1], [1], 4, 10, 0)
    with pytest.raises(ValueError, match="mode"):
        EventData([0, 1], [0.1], [1], 4, 10, 1e-3, mode="sum")
    with pytest.raises(ValueError, match="finite"):
        EventData([0, 1], [np.nan], [1], 4, 10, 1e-3)


# ------------------------------------------------------------------ download cache
def test_fetch_downloads_verifies_and_caches(tmp_path, cache, monkeypatch):
    src = tmp_path / "remote" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(b"payload" * 1000)
    spec = spec_for(src)
    path = fetch(spec, "sub", progress=False)
    assert path == cache / "sub" / "f.bin" and path.read_bytes() == src.read_bytes()
    assert (cache / "sub" / "f.bin.verified").exists()
    calls = []
    monkeypatch.setattr(download, "_digests", lambda p: calls.append(p))
    assert fetch(spec, "sub", progress=False) == path and calls == []     # stamped: not hashed again
    assert not list((cache / "sub").glob("*.part-*"))


def test_fetch_rejects_wrong_digest_and_leaves_nothing(tmp_path, cache):
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    bad = RemoteFile("f.bin", (src.as_uri(),), "0" * 64)
    with pytest.raises(DatasetUnavailable, match="sha256"):
        fetch(bad, progress=False)
    assert not (cache / "f.bin").exists() and not list(cache.glob("f.bin*"))


def test_interrupted_download_never_looks_complete(cache, monkeypatch):
    class Broken(io.BytesIO):
        headers = {"Content-Length": "100000"}

        def read(self, n=-1):
            if self.tell() >= 3000:
                raise ConnectionResetError("connection lost")
            return super().read(1000)

    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: Broken(b"x" * 100000))
    spec = RemoteFile("big.bin", ("https://example.org/big.bin",), "0" * 64)
    with pytest.raises(DatasetUnavailable, match="connection lost"):
        fetch(spec, progress=False)
    assert not list(cache.glob("big.bin*"))


def test_offline_error_names_url_and_path(cache, monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(download, "_urlopen", no_network)
    with pytest.raises(DatasetUnavailable) as e:
        load("mnist", "train")
    msg = str(e.value)
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" in msg
    assert str(cache / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in msg
    monkeypatch.setenv("SNNKIT_OFFLINE", "1")
    monkeypatch.setattr(download, "_urlopen", lambda *a: pytest.fail("network used while offline"))
    with pytest.raises(DatasetUnavailable, match=r"SNNKIT_OFFLINE.*shd_test\.h5\.gz"):
        load("shd", "test")


def test_user_placed_corrupt_file_is_reported_not_replaced(cache):
    spec = real.FILES["mnist"]["test_labels"]
    p = cache / "mnist" / spec.filename
    p.parent.mkdir(parents=True)
    p.write_bytes(b"\0" * spec.size)
    with pytest.raises(ChecksumError, match="differs from the published"):
        fetch(spec, "mnist")
    assert p.read_bytes() == b"\0" * spec.size


def test_decompressed_file_placed_by_hand_is_accepted_and_checked(tmp_path, cache, monkeypatch):
    rng = np.random.default_rng(5)
    specs = {}
    for part, n in (("train", 30), ("test", 12)):
        x, y = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        for kind, arr in (("images", x), ("labels", y)):
            raw = idx_bytes(arr, compress=False)
            fn = f"{part}-{kind}-idx-ubyte"
            (cache / "mnist").mkdir(parents=True, exist_ok=True)
            (cache / "mnist" / fn).write_bytes(raw)                 # only the decompressed file
            alt = RemoteFile(fn, (), sha(raw), size=len(raw))
            specs[f"{part}_{kind}"] = RemoteFile(fn + ".gz", ("https://example.org/" + fn + ".gz",), "0" * 64,
                                                 unpacked=alt)
    monkeypatch.setattr(download, "_urlopen", lambda *a: pytest.fail("network used though the files are there"))
    _install(monkeypatch, "mnist", specs, (30, 12), 6)
    assert real.available("mnist")
    assert len(load("mnist", "train_full")) == 30 and len(load("mnist", "test")) == 12
    real._images.cache_clear()
    p = cache / "mnist" / "test-labels-idx-ubyte"
    p.write_bytes(p.read_bytes()[:-1] + b"\x09")                   # same size, other content
    (cache / "mnist" / "test-labels-idx-ubyte.verified").unlink()
    with pytest.raises(ChecksumError, match="differs from the published"):
        load("mnist", "test")


def test_mnist_hint_names_the_decompressed_alternative(cache, monkeypatch):
    monkeypatch.setenv("SNNKIT_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable) as e:
        load("mnist", "test")
    assert str(cache / "mnist" / "t10k-images-idx3-ubyte") in str(e.value)
    assert "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7" in str(e.value)


def test_md5_only_files_warn(tmp_path, cache):
    src = tmp_path / "e.bin"
    src.write_bytes(b"events")
    spec = RemoteFile("e.bin", (src.as_uri(),), None, md5=hashlib.md5(b"events").hexdigest(), note="test")
    with pytest.warns(UserWarning, match="md5 only"):
        fetch(spec, progress=False)
    with pytest.raises(ValueError, match="sha256 or md5"):
        RemoteFile("x", ("u",), None)


def test_published_digests_are_well_formed():
    for name, files in real.FILES.items():
        for f in files.values():
            assert (f.sha256 is None or len(f.sha256) == 64) and (f.md5 is None or len(f.md5) == 32), f
            assert f.sha256 or f.note, f"{f.filename}: md5-only files must say why"


# ------------------------------------------------------------------ real.load on generated files
def _install(monkeypatch, name, specs, counts, n_val):
    monkeypatch.setitem(real.FILES, name, specs)
    monkeypatch.setitem(real.COUNTS, name, counts)
    monkeypatch.setitem(real.N_VALIDATION, name, n_val)


def test_mnist_family_loader_end_to_end(tmp_path, cache, monkeypatch):
    rng = np.random.default_rng(3)
    remote = tmp_path / "remote"
    remote.mkdir()
    specs = {}
    for part, n in (("train", 30), ("test", 12)):
        x, y = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        for kind, arr in (("images", x), ("labels", y)):
            f = remote / f"{part}-{kind}.gz"
            f.write_bytes(idx_bytes(arr))
            specs[f"{part}_{kind}"] = spec_for(f)
    _install(monkeypatch, "fashion_mnist", specs, (30, 12), 6)
    tr, va, te, full = (load("fashion_mnist", s) for s in ("train", "validation", "test", "train_full"))
    assert (len(tr), len(va), len(te), len(full)) == (24, 6, 12, 30)
    assert tr.x.dtype == np.float32 and tr.x.shape == (24, 784) and tr.shape == (28, 28)
    assert 0 <= full.x.min() and full.x.max() <= 1 and np.allclose(full.x * 255, np.round(full.x * 255))
    rows = lambda d: {r.tobytes() + bytes([l]) for r, l in zip(d.x, d.y)}
    assert rows(tr) | rows(va) == rows(full) and not rows(tr) & rows(va)
    np.testing.assert_array_equal(load("fashion_mnist", "validation").x, va.x)
    assert len(load("fashion_mnist", "test", limit=5)) == 5 and not te.stand_in
    # a file with fewer samples than published is an error, not a smaller data set
    real._images.cache_clear()
    monkeypatch.setitem(real.COUNTS, "fashion_mnist", (31, 12))
    with pytest.raises(ValueError, match="hold 30 samples, the published set has 31"):
        load("fashion_mnist", "train")


def test_emnist_loader_end_to_end(tmp_path, cache, monkeypatch):
    x = np.random.default_rng(4).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    y = np.arange(20) % 47
    src = tmp_path / "gzip.zip"
    make_emnist_zip(src, x, y)
    _install(monkeypatch, "emnist", {"archive": spec_for(src)}, (20, 20), 4)
    d = load("emnist", "test")
    np.testing.assert_allclose(d.x.reshape(-1, 28, 28) * 255, x)
    assert d.n_classes == 47 and len(d.class_names) == 47 and d.class_names[10] == "A"


def test_shd_loader_bins_with_s3gd_defaults(tmp_path, cache, monkeypatch):
    times = [[0.0, 0.0031, 0.999], [1.2], [0.5]]
    src = tmp_path / "shd_test.h5"
    write_shd(src, times, [[1, 1, 2], [5], [699]], [0, 19, 3])
    gz = tmp_path / "shd_test.h5.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    _install(monkeypatch, "shd", {"train": spec_for(gz), "test": spec_for(gz)}, (3, 3), 1)
    d = load("shd", "test")
    assert isinstance(d.x, real.EventData) and d.x.shape == (3, 500, 700) and d.shape == (500, 700)
    r = d.x[[0, 1]]
    assert r[0, 0, 1] == 1 and r[0, 1, 1] == 1 and r[0, 499, 2] == 1 and r.sum() == 3
    assert d.x.n_dropped == 1 and "1 events after the window" in d.info       # t = 1.2 s > 500 x 2 ms
    assert load("shd", "test", n_steps=700).x.n_dropped == 0
    assert (cache / "shd" / "shd_test.h5").exists() and not list((cache / "shd").glob("*.part-*"))
    with pytest.raises(ValueError, match="nmnist only"):
        load("shd", "test", merge_polarity=False)


def test_nmnist_loader_merges_polarity_by_default(tmp_path, cache, monkeypatch):
    src = tmp_path / "Train.zip"
    make_nmnist_zip(src, "Train", [(d, ([d], [d], [d % 2], [1000 * d])) for d in range(10)])
    _install(monkeypatch, "nmnist", {"train": spec_for(src), "test": spec_for(src)}, (10, 10), 2)
    full = load("nmnist", "train_full")
    assert full.x.shape == (10, 300, 1156) and full.y.tolist() == list(range(10))
    assert full.x[[3]][0, 3, 3 * 34 + 3] == 1
    sep = load("nmnist", "train_full", merge_polarity=False)
    assert sep.x.n_channels == 2312 and sep.x[[3]][0, 3, 34 * 34 + 3 * 34 + 3] == 1
    assert (cache / "nmnist" / "Train.events.npz").exists()                  # parsed once, then cached


def test_stale_or_corrupt_event_cache_is_parsed_again(tmp_path, cache, monkeypatch):
    src = tmp_path / "Train.zip"
    make_nmnist_zip(src, "Train", [(d, ([d], [d], [d % 2], [1000 * d])) for d in range(10)])
    _install(monkeypatch, "nmnist", {"train": spec_for(src), "test": spec_for(src)}, (10, 10), 2)
    ref = load("nmnist", "train_full").x[list(range(10))]
    npz = cache / "nmnist" / "Train.events.npz"
    for bad in (b"not an npz", None):
        real._events.cache_clear()
        if bad is None:                                    # readable, but the arrays do not fit together
            np.savez(npz, offsets=np.array([0, 5]), times=np.zeros(2), channels=np.zeros(2), labels=np.zeros(1))
        else:
            npz.write_bytes(bad)
        np.testing.assert_array_equal(load("nmnist", "train_full").x[list(range(10))], ref)
        assert real._read_event_cache(npz) is not None             # rewritten by the re-parse


def test_truncated_archives_are_errors_not_short_data(tmp_path, cache, monkeypatch):
    src = tmp_path / "shd_test.h5"
    write_shd(src, [[0.1], [0.2]], [[1], [2]], [0, 1])
    gz = tmp_path / "shd_test.h5.gz"
    gz.write_bytes(gzip.compress(src.read_bytes())[:-40])          # the gzip stream stops early
    _install(monkeypatch, "shd", {"train": spec_for(gz), "test": spec_for(gz)}, (2, 2), 1)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load("shd", "test")
    z = tmp_path / "Test.zip"
    make_nmnist_zip(z, "Test", [(d, ([d], [d], [0], [1000 * d])) for d in range(10)])
    cut = tmp_path / "Test_cut.zip"
    cut.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        formats.read_nmnist_zip(cut)


# ------------------------------------------------------------------ stand-ins and argument checks
@pytest.mark.parametrize("name,shape", [("mnist", (784,)), ("fashion_mnist", (784,)), ("emnist", (784,)),
                                        ("shd", (500, 700)), ("nmnist", (300, 1156))])
def test_stand_in_is_same_shaped_and_labelled(name, shape, cache, capsys):
    d = load(name, "test", stand_in=True, limit=60)
    assert len(d) == 60 and d.x.shape[1:] == shape and d.stand_in
    assert "stand-in" in d.name and "SYNTHETIC STAND-IN" in d.info and "STAND-IN" in capsys.readouterr().err
    assert d.y.max() < d.n_classes and len(np.unique(d.y)) > 5
    again = load(name, "test", stand_in=True, limit=60)
    np.testing.assert_array_equal(again.y, d.y)
    assert not list(cache.glob("**/*"))                          # no network, no files


@pytest.mark.slow
@pytest.mark.parametrize("name,chance,floor", [("mnist", 0.1, 0.7), ("shd", 0.05, 0.5), ("nmnist", 0.1, 0.4)])
def test_stand_in_is_learnable_but_not_trivial(name, chance, floor):
    from sklearn.linear_model import LogisticRegression
    tr = load(name, "train", stand_in=True, limit=600)
    te = load(name, "test", stand_in=True, limit=200)

    def features(d):                       # events: counts in 10 time bins per channel
        if not hasattr(d.x, "n_steps"):
            return d.x
        r = d.x[np.arange(len(d))]
        return r.reshape(len(d), 10, r.shape[1] // 10, -1).sum(2).reshape(len(d), -1)
    acc = LogisticRegression(max_iter=300).fit(features(tr), tr.y).score(features(te), te.y)
    assert floor < acc < 1.0 and acc > 3 * chance


def test_load_argument_errors(cache):
    with pytest.raises(ValueError, match="split must be one of"):
        load("mnist", "dev", stand_in=True)
    with pytest.raises(ValueError, match="limit"):
        load("mnist", "test", stand_in=True, limit=0)
    with pytest.raises(ValueError, match="event data sets"):
        load("mnist", "test", stand_in=True, n_steps=10)
    with pytest.raises(ValueError, match="unknown argument"):
        load("mnist", "test", stand_in=True, standin=True)
    with pytest.raises(ValueError, match="stand_in must be"):
        load("mnist", "test", stand_in="yes")
