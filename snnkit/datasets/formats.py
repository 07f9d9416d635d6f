"""Parsers for the published file formats. Each one checks what it reads: a truncated or corrupt
file raises ``ValueError`` naming the file and what is wrong, it never yields a shorter data set.

* IDX (MNIST, Fashion-MNIST, EMNIST): a big-endian header ``0x00 0x00 <type> <ndim>``, then
  ``ndim`` uint32 sizes, then the values (type 0x08 = unsigned byte). Usually gzip-compressed.
* EMNIST: the NIST archive ``gzip.zip`` holds ``gzip/emnist-<split>-{train,test}-{images-idx3,
  labels-idx1}-ubyte.gz`` and ``gzip/emnist-<split>-mapping.txt`` (``label ascii-code`` lines).
  Its images are stored transposed relative to MNIST: ``images.transpose(0, 2, 1)`` fixes them.
* SHD (HDF5): ``spikes/times`` (one float array per sample, seconds), ``spikes/units`` (one
  integer array per sample, channel 0..699) and ``labels`` (0..19); ``extra/keys`` names the classes.
* N-MNIST: one ``.bin`` file per sample, 5 bytes (40 bits) per event:
  byte 0 = x, byte 1 = y, byte 2 bit 7 = polarity, bits 22..0 of bytes 2-4 = time in us.
  A record with y == 240 is a timestamp-overflow marker: later times gain 2**13 us (Orchard's
  reader); it is not an event. The archives ``Train.zip``/``Test.zip`` hold ``<Split>/<digit>/<id>.bin``.
"""
from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NMNIST_SIZE = 34
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13


def _raw_bytes(src, name: str) -> bytes:
    """Bytes of a file or buffer, gunzipped when it starts with the gzip magic."""
    data = Path(src).read_bytes() if isinstance(src, (str, Path)) else bytes(src)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{name}: the gzip stream is truncated or corrupt ({e}); "
                             "delete the file and download it again.") from None
    return data


def read_idx(src, name: str | None = None) -> np.ndarray:
    """Array stored in an IDX file (path or bytes, gzip or plain)."""
    name = name or str(src if isinstance(src, (str, Path)) else "IDX data")
    data = _raw_bytes(src, name)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(f"{name}: not an IDX file (bad magic number {data[:4].hex()}).")
    ndim = data[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(data) < head:
        raise ValueError(f"{name}: IDX header is truncated.")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dt = np.dtype(IDX_TYPES[data[2]])
    want = int(np.prod(dims)) * dt.itemsize
    if len(data) - head != want:
        raise ValueError(f"{name}: header says {dims} ({want} bytes of data) but the file holds "
                         f"{len(data) - head}; it is truncated or corrupt.")
    return np.frombuffer(data, dt, offset=head).reshape(dims).astype(dt.newbyteorder("="), copy=True)


def read_idx_pair(images, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [n, rows, cols] uint8, labels [n] int64) from two IDX sources, checked to match."""
    x = read_idx(images, f"{name} images")
    y = read_idx(labels, f"{name} labels")
    if x.ndim != 3 or y.ndim != 1:
        raise ValueError(f"{name}: expected images [n, rows, cols] and labels [n], got {x.shape} and {y.shape}.")
    if len(x) != len(y):
        raise ValueError(f"{name}: {len(x)} images but {len(y)} labels.")
    return x, y.astype(np.int64)


def read_emnist(zip_path, subset: str, part: str):
    """(images [n, 28, 28] uint8 upright, labels [n], mapping {label: character}) from ``gzip.zip``."""
    name = f"EMNIST {subset}/{part}"
    try:
        with zipfile.ZipFile(zip_path) as z:
            def member(kind):
                m = f"gzip/emnist-{subset}-{part}-{kind}-ubyte.gz"
                try:
                    return z.read(m)
                except KeyError:
                    raise ValueError(f"{zip_path}: has no member {m}; is it the NIST EMNIST gzip.zip?") from None
            x, y = read_idx_pair(member("images-idx3"), member("labels-idx1"), name)
            try:
                text = z.read(f"gzip/emnist-{subset}-mapping.txt").decode()
            except KeyError:
                text = ""
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise ValueError(f"{zip_path}: the zip archive is truncated or corrupt ({e}).") from None
    mapping = {}
    for line in text.split("\n"):
        if line.strip():
            lab, code = line.split()[:2]
            mapping[int(lab)] = chr(int(code))
    return np.ascontiguousarray(x.transpose(0, 2, 1)), y, mapping


def read_shd(path, n_channels: int = 700):
    """(offsets [n+1], times [E] s, channels [E], labels [n], class names) from an SHD HDF5 file."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e}); delete it and download it again.") from None
    with f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise ValueError(f"{path}: no '{key}' dataset; this is not an SHD file.")
        try:
            times = list(f["spikes/times"][:])
            units = list(f["spikes/units"][:])
            labels = np.asarray(f["labels"][:], dtype=np.int64)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"{path}: HDF5 data could not be read ({e}); the file is truncated or corrupt.") from None
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][:]] if "extra/keys" in f else []
    if not (len(times) == len(units) == len(labels)):
        raise ValueError(f"{path}: {len(times)} time arrays, {len(units)} unit arrays, {len(labels)} labels.")
    lens = np.array([len(t) for t in times], dtype=np.int64)
    if any(len(t) != len(u) for t, u in zip(times, units)):
        raise ValueError(f"{path}: a sample has different numbers of spike times and units.")
    offsets = np.concatenate([[0], np.cumsum(lens)])
    t = np.concatenate(times).astype(np.float64) if len(times) else np.zeros(0)
    u = np.concatenate(units).astype(np.int64) if len(units) else np.zeros(0, np.int64)
    if t.size and (not np.isfinite(t).all() or t.min() < 0):
        raise ValueError(f"{path}: spike times must be finite and >= 0.")
    if u.size and (u.min() < 0 or u.max() >= n_channels):
        raise ValueError(f"{path}: unit ids must lie in [0, {n_channels}); found {u.min()}..{u.max()}.")
    return offsets, t, u.astype(np.int32), labels, keys


def read_nmnist_bin(data, name: str = "N-MNIST sample"):
    """(x, y, polarity, t_us) arrays of one N-MNIST sample (bytes or path)."""
    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else bytes(data)
    if len(raw) % 5:
        raise ValueError(f"{name}: {len(raw)} bytes is not a whole number of 5-byte events; "
                         "the file is truncated or corrupt.")
    r = np.frombuffer(raw, np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = r[:, 0], r[:, 1]
    p = r[:, 2] >> 7
    t = ((r[:, 2] & 0x7F) << 16) | (r[:, 3] << 8) | r[:, 4]
    over = y == NMNIST_OVERFLOW_Y
    if over.any():
        t = t + NMNIST_OVERFLOW_US * np.cumsum(over)
    ev = ~over
    x, y, p, t = x[ev], y[ev], p[ev], t[ev]
    if x.size and (x.max() >= NMNIST_SIZE or y.max() >= NMNIST_SIZE):
        raise ValueError(f"{name}: event coordinates beyond the {NMNIST_SIZE}x{NMNIST_SIZE} sensor; "
                         "the file is corrupt or not N-MNIST.")
    return x.astype(np.int32), y.astype(np.int32), p.astype(np.int32), t


def write_nmnist_bin(x, y, p, t_us) -> bytes:
    """The inverse of :func:`read_nmnist_bin` (without overflow markers; t < 2**23 us)."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t_us))
    if t.size and (t.max() >= 1 << 23 or t.min() < 0):
        raise ValueError("t_us must lie in [0, 2**23) microseconds")
    r = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    return r.tobytes()


def read_nmnist_zip(zip_path, merge_polarity: bool = True):
    """(offsets, times s, channels, labels) of every ``<Split>/<digit>/<id>.bin`` in an archive,
    in sorted member order. Channel = y*34 + x (merged) or p*34*34 + y*34 + x."""
    offs, ts, chs, labels = [0], [], [], []
    try:
        with zipfile.ZipFile(zip_path) as z:
            members = sorted(m for m in z.namelist() if m.endswith(".bin"))
            for m in members:
                parts = m.split("/")
                if len(parts) < 2 or not parts[-2].isdigit():
                    raise ValueError(f"{zip_path}: member {m} is not under a <digit>/ folder.")
                x, y, p, t = read_nmnist_bin(z.read(m), f"{zip_path}:{m}")
                ch = y * NMNIST_SIZE + x
                if not merge_polarity:
                    ch = ch + p * NMNIST_SIZE * NMNIST_SIZE
                order = np.argsort(t, kind="stable")
                ts.append(t[order] * 1e-6)
                chs.append(ch[order].astype(np.int32))
                offs.append(offs[-1] + len(t))
                labels.append(int(parts[-2]))
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise ValueError(f"{zip_path}: the zip archive is truncated or corrupt ({e}).") from None
    if not labels:
        raise ValueError(f"{zip_path}: holds no .bin samples.")
    return (np.asarray(offs, np.int64), np.concatenate(ts), np.concatenate(chs),
            np.asarray(labels, np.int64))
