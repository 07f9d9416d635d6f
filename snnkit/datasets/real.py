"""The real data sets: MNIST, Fashion-MNIST, EMNIST (balanced), SHD and N-MNIST.

    x, y = load("mnist", "train")                       # downloads into $SNNKIT_DATA on first use
    d = load("shd", "test", n_steps=500, dt=2e-3)       # d.x is EventData: d.x[idx] -> [b, T, 700]
    d = load("mnist", "train", stand_in=True)           # explicit synthetic stand-in, labelled

Splits: the publishers give train and test. ``"validation"`` is a fixed part of the published
training set (the last ``N_VALIDATION[name]`` samples of a seed-0 permutation; 6000 for the
MNIST family, matching the 54k/6k split of the STBP reproduction), ``"train"`` is the rest, and
``"train_full"`` is the whole published training set (what BATS and S3GD report on).
Counts are checked against the published ones: a short file is an error, not a smaller data set.
``limit=n`` keeps the first n samples of the split (explicitly, for quick runs).

Images: x float32 [n, 784] = pixel / 255, ``.shape == (28, 28)``. Events (SHD, N-MNIST): x is an
:class:`~snnkit.datasets.events.EventData` binned to ``n_steps`` steps of ``dt`` seconds, with the
S3GD settings as defaults (SHD 500 x 2 ms over 700 channels; N-MNIST 300 x 1 ms over 34x34 pixels,
polarities merged into 1156 channels unless ``merge_polarity=False`` -> 2312).
Sources, digests and their provenance: ``FILES`` below and data/README.md.
"""
from __future__ import annotations

import gzip
import os
import shutil
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import checks
from . import formats, standins
from .download import RemoteFile, data_dir, fetch
from .embedded import Dataset
from .events import EventData

REAL_SPLITS = ("train", "validation", "test", "train_full")
_TFDS = "tensorflow_datasets/url_checksums (github.com/tensorflow/datasets)"
_MNIST_URLS = ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_MENDELEY = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"


def _idx_files(urls, table, note, unpacked=None):
    """``unpacked``: {key: (size, sha256)} of the decompressed files, where independently known."""
    unpacked = unpacked or {}

    def alt(key, fn):
        if key not in unpacked:
            return None
        size, sha = unpacked[key]
        return RemoteFile(fn[:-3], (), sha, size=size, note=_UNPACKED_NOTE)
    return {key: RemoteFile(fn, tuple(u + fn for u in urls), sha, size=size, note=note, unpacked=alt(key, fn))
            for key, (fn, size, sha) in table.items()}


# sha256 of the decompressed MNIST files, as pinned by several independent public loaders (among
# them the Rust `mnist` crate and PyTorch-based reproductions); a file placed by hand under the
# name without .gz is checked against these.
_UNPACKED_NOTE = "sha256 of the decompressed file, as pinned by several public MNIST loaders"
_MNIST_UNPACKED = {
    "train_images": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}


FILES = {
    "mnist": _idx_files(_MNIST_URLS, {
        "train_images": ("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train_labels": ("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "test_images": ("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    }, _TFDS + ", mnist.txt", _MNIST_UNPACKED),
    "fashion_mnist": _idx_files(_FASHION_URLS, {
        "train_images": ("train-images-idx3-ubyte.gz", 26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train_labels": ("train-labels-idx1-ubyte.gz", 29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "test_images": ("t10k-images-idx3-ubyte.gz", 4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", 5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    }, _TFDS + ", fashion_mnist.txt"),
    "emnist": {"archive": RemoteFile(
        "gzip.zip", ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                     "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip"),
        "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e", size=561753746,
        note=_TFDS + ", emnist.txt")},
    # No sha256 of the .h5.gz files has been published; the md5 values are those of the
    # publisher's md5sums.txt (then at compneuro.net, now https://zenkelab.org/datasets/md5sums.txt),
    # as reproduced by several public loaders.
    "shd": {
        "train": RemoteFile("shd_train.h5.gz", ("https://zenkelab.org/datasets/shd_train.h5.gz",
                                                "https://compneuro.net/datasets/shd_train.h5.gz"),
                            None, md5="d47c9825dee33347913e8ce0f2be08b0",
                            note="publisher's md5sums.txt; no sha256 published"),
        "test": RemoteFile("shd_test.h5.gz", ("https://zenkelab.org/datasets/shd_test.h5.gz",
                                              "https://compneuro.net/datasets/shd_test.h5.gz"),
                           None, md5="3062a80ec0c5719404d5b02e166543b1",
                           note="publisher's md5sums.txt; no sha256 published"),
    },
    # N-MNIST (Orchard et al. 2015) on Mendeley Data; md5 as used by the tonic and SpikingJelly loaders.
    "nmnist": {
        "train": RemoteFile("Train.zip", (_MENDELEY + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",),
                            None, md5="20959b8e626244a1b502305a9e6e2031",
                            note="md5 from the tonic / SpikingJelly loaders; no sha256 published"),
        "test": RemoteFile("Test.zip", (_MENDELEY + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",),
                           None, md5="69ca8762b2fe404d9b9bad1103e97832",
                           note="md5 from the tonic / SpikingJelly loaders; no sha256 published"),
    },
}

# published sample counts (train, test); a parsed file that disagrees is an error
COUNTS = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000), "emnist": (112800, 18800),
          "shd": (8156, 2264), "nmnist": (60000, 10000)}
N_VALIDATION = {"mnist": 6000, "fashion_mnist": 6000, "emnist": 11280, "shd": 816, "nmnist": 6000}
N_CLASSES = {"mnist": 10, "fashion_mnist": 10, "emnist": 47, "shd": 20, "nmnist": 10}
EVENT_DEFAULTS = {"shd": dict(n_steps=500, dt=2e-3), "nmnist": dict(n_steps=300, dt=1e-3)}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "nmnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "emnist": list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"),
    "shd": [f"{w}" for w in ("zero one two three four five six seven eight nine".split()
                             + "null eins zwei drei vier fuenf sechs sieben acht neun".split())],
}
STAND_IN = "(synthetic stand-in)"


# ---------------------------------------------------------------- reading the published files
def _part(split):
    return "test" if split == "test" else "train"


@lru_cache(maxsize=8)
def _images(name, part):
    if name == "emnist":
        x, y, mapping = formats.read_emnist(fetch(FILES["emnist"]["archive"], "emnist"), "balanced", part)
    else:
        f = FILES[name]
        x, y = formats.read_idx_pair(fetch(f[f"{part}_images"], name), fetch(f[f"{part}_labels"], name),
                                     f"{name} {part}")
    return (x.reshape(len(x), -1) / np.float32(255)).astype(np.float32), y


def _gunzip_once(gz: Path) -> Path:
    """``x.h5.gz`` -> ``x.h5`` beside it, written to a temporary name and renamed when complete."""
    out = gz.with_suffix("")
    if out.exists() and out.stat().st_mtime_ns >= gz.stat().st_mtime_ns:
        return out
    tmp = out.with_name(f"{out.name}.part-{os.getpid()}")
    if not os.access(out.parent, os.W_OK):
        raise ValueError(f"{gz} must be decompressed to {out} once, but {out.parent} is read-only. Decompress it "
                         f"there by hand (gunzip -k {gz}) where you can write, or set SNNKIT_DATA to a writable "
                         "folder holding the file.")
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, out)
    except (EOFError, OSError) as e:
        raise ValueError(f"{gz}: the gzip stream is truncated or corrupt ({e}).") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


@lru_cache(maxsize=4)
def _events(name, part):
    """(offsets, times s, channels, labels) of the published file; N-MNIST channels keep polarity."""
    if name == "shd":
        offsets, t, ch, y, _ = formats.read_shd(_gunzip_once(fetch(FILES["shd"][part], "shd")))
        return offsets, t, ch, y
    archive = fetch(FILES["nmnist"][part], "nmnist")
    cache = archive.with_name(f"{archive.stem}.events.npz")     # parsing 60000 small files takes a while
    if cache.exists() and cache.stat().st_mtime_ns >= archive.stat().st_mtime_ns:
        arrays = _read_event_cache(cache)
        if arrays is not None:
            return arrays
        print(f"[snnkit] {cache} is unreadable or inconsistent: parsing {archive.name} again",
              file=sys.stderr)
    arrays = formats.read_nmnist_zip(archive, merge_polarity=False)
    tmp = cache.with_name(f"{cache.stem}.part-{os.getpid()}.npz")
    try:
        np.savez(tmp, offsets=arrays[0], times=arrays[1], channels=arrays[2], labels=arrays[3])
        os.replace(tmp, cache)
    except OSError as e:               # a read-only cache: the data are fine, only parsing again costs time
        warnings.warn(f"could not write the parsed-events cache {cache} ({e}); {archive.name} will be parsed again "
                      "on every load. Make the folder writable to keep the cache.", RuntimeWarning, stacklevel=2)
        if tmp.exists():
            tmp.unlink()
    return arrays


def _read_event_cache(path: Path):
    """The parsed events of an archive, or None when the cache file is unreadable or its arrays do
    not fit together (an interrupted or foreign file is re-parsed, never trusted)."""
    try:
        with np.load(path) as z:
            offsets, t, ch, y = (z[k] for k in ("offsets", "times", "channels", "labels"))
    except (OSError, ValueError, KeyError, EOFError):
        return None
    ok = (offsets.ndim == t.ndim == ch.ndim == y.ndim == 1 and len(offsets) == len(y) + 1
          and len(offsets) > 0 and offsets[0] == 0 and offsets[-1] == len(t) == len(ch)
          and bool(np.all(np.diff(offsets) >= 0)))
    return (offsets, t, ch, y) if ok else None


# ---------------------------------------------------------------- stand-ins (explicit only)
def _split_size(name, split):
    n_train, n_test = COUNTS[name]
    return {"test": n_test, "train_full": n_train, "validation": N_VALIDATION[name],
            "train": n_train - N_VALIDATION[name]}[split]


@lru_cache(maxsize=8)
def _stand_in(name, split, n):
    """``n`` stand-in samples; each split has its own seed, so splits never share samples."""
    seed = 1 + REAL_SPLITS.index(split) + 10 * list(COUNTS).index(name)
    if name in ("shd", "nmnist"):
        return getattr(standins, name)(n, seed)
    return standins.images(n, N_CLASSES[name], seed)


# ---------------------------------------------------------------- splits and the public loader
def _split_index(name, split, n):
    if split in ("test", "train_full"):
        return np.arange(n)
    perm = np.random.default_rng(0).permutation(n)
    n_val = N_VALIDATION[name]
    return np.sort(perm[-n_val:] if split == "validation" else perm[:-n_val])


def _check_count(name, part, got):
    want = COUNTS[name][part == "test"]
    if got != want:
        raise ValueError(f"{name} {part}: the files hold {got} samples, the published set has {want}. "
                         f"The cache ({data_dir()}) holds a truncated or different version; delete it and "
                         "download again.")


def load(name: str, split: str = "train", *, stand_in: bool = False, limit: int | None = None,
         n_steps: int | None = None, dt: float | None = None, merge_polarity: bool = True,
         mode: str = "binary", **unknown) -> Dataset:
    """One split of a real data set (see the module docstring). ``stand_in=True`` returns the
    same-shaped synthetic stand-in instead of reading the published files, labelled as such."""
    if unknown:
        raise ValueError(f"unknown argument(s) {sorted(unknown)} for load({name!r}); accepted: stand_in, "
                         "limit, n_steps, dt, merge_polarity, mode")
    if name not in FILES:
        raise ValueError(f"unknown real data set {name!r}; choose one of {sorted(FILES)}")
    if split not in REAL_SPLITS:
        raise ValueError(f"split must be one of {REAL_SPLITS}, got {split!r}")
    if stand_in not in (True, False):
        raise ValueError(f"stand_in must be True or False, got {stand_in!r}")
    if limit is not None and not (isinstance(limit, (int, np.integer)) and not isinstance(limit, bool) and limit > 0):
        raise ValueError(f"limit must be a positive integer (or None for the whole split), got {limit!r}")
    event = name in EVENT_DEFAULTS
    if n_steps is not None:
        n_steps = checks.integer("n_steps", n_steps, 1, "It is the number of time bins (None: the default).")
    if dt is not None:
        dt = checks.positive("dt", dt, "It is the bin width in seconds (None: the default).")
    if not event and (n_steps is not None or dt is not None or merge_polarity is not True or mode != "binary"):
        raise ValueError(f"n_steps, dt, merge_polarity and mode apply to the event data sets (shd, nmnist), "
                         f"not to {name}")
    part = _part(split)
    if stand_in:
        n = _split_size(name, split) if limit is None else min(limit, _split_size(name, split))
        arrays = _stand_in(name, split, n)
        idx = np.arange(n)
    else:
        arrays = _events(name, part) if event else _images(name, part)
        _check_count(name, part, len(arrays[-1]))
        idx = _split_index(name, split, len(arrays[-1]))
        if limit is not None:
            idx = idx[:limit]
    y_all = arrays[-1]
    label = f"{name} {STAND_IN}" if stand_in else name
    if event:
        ev = _event_data(name, arrays, n_steps, dt, merge_polarity, mode).subset(idx)
        shape = (ev.n_steps, ev.n_channels)
        info = (f"{'SYNTHETIC STAND-IN, not the real data. ' if stand_in else ''}{name} {split}: "
                f"{len(idx)} samples, {ev.n_steps} steps of {ev.dt * 1e3:g} ms, {ev.n_channels} channels, "
                f"{ev.n_dropped} events after the window")
        ds = Dataset(ev, y_all[idx].copy(), label, split, N_CLASSES[name], shape, CLASS_NAMES[name], info)
    else:
        info = (f"{'SYNTHETIC STAND-IN, not the real data. ' if stand_in else ''}{name} {split}: "
                f"{len(idx)} images 28x28, pixel / 255")
        ds = Dataset(arrays[0][idx], y_all[idx].copy(), label, split, N_CLASSES[name], (28, 28),
                     CLASS_NAMES[name], info)
    ds.stand_in = bool(stand_in)
    if stand_in:
        print(f"[snnkit] {name} {split}: using the SYNTHETIC STAND-IN (same shapes, not the real data)",
              file=sys.stderr)
    return ds


def _event_data(name, arrays, n_steps, dt, merge_polarity, mode):
    offsets, t, ch, _ = arrays
    d = EVENT_DEFAULTS[name]
    n_ch = 700
    if name == "nmnist":
        pix = formats.NMNIST_SIZE ** 2
        ch, n_ch = (ch % pix, pix) if merge_polarity else (ch, 2 * pix)
    elif merge_polarity is not True:
        raise ValueError("merge_polarity applies to nmnist only (SHD has no polarity)")
    # ``is None``, not ``or``: n_steps=0 or dt=0 must be refused by EventData, not replaced by the defaults
    return EventData(offsets, t, ch, n_ch, d["n_steps"] if n_steps is None else n_steps,
                     d["dt"] if dt is None else dt, mode)


def available(name: str) -> bool:
    """Whether every published file of ``name`` is already in the cache (no network needed)."""
    folder = data_dir() / name
    return all((folder / f.filename).exists() or (f.unpacked is not None and (folder / f.unpacked.filename).exists())
               for f in FILES[name].values())
