"""The download cache: fetch a file once, check it, keep it.

Every real data set is a handful of files published at a fixed URL. :func:`fetch` returns the
local path of one of them, in this order:

1. the file is already in the cache (``$SNNKIT_DATA``, default ``data/cache/`` at the repository
   root, which git ignores)
   and its checksum was verified before (a small ``<file>.verified`` stamp records size, mtime
   and digest, so a 560 MB archive is hashed once, not on every load) -> use it;
2. the file is in the cache but unverified (placed by hand) -> hash it now; a mismatch is an
   error naming both digests, never a silent re-download over the user's file;
3. otherwise download it from each mirror in turn into ``<file>.part-<pid>`` in the same folder,
   hash while writing, and ``os.replace`` it into place only when the digest matches. An
   interrupted or corrupt download therefore never leaves a file that looks complete.

Without network (or with ``SNNKIT_OFFLINE=1``) the error says which URL to fetch and the exact
path to put the file at. Checksums: sha256 where a published value exists; for files whose only
published digest is md5 (SHD, N-MNIST) the spec carries ``sha256=None`` and ``md5=...``, and a
warning says that the weaker check was used.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CHUNK = 1 << 20


class DatasetUnavailable(FileNotFoundError):
    """A data file is not in the cache and cannot be downloaded here."""


class ChecksumError(ValueError):
    """A file's digest differs from the published one."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name in the cache, where to get it, and how to check it."""
    filename: str
    urls: tuple                        # mirrors, tried in order
    sha256: str | None
    md5: str | None = None             # only used when no sha256 was published
    size: int | None = None            # bytes, when published (a cheap first check)
    note: str = ""                     # where the digest comes from
    extra: dict = field(default_factory=dict)
    unpacked: "RemoteFile | None" = None   # the decompressed file, accepted in its place when a
                                           # user already has it (checked against its own digest)

    def __post_init__(self):
        if self.sha256 is None and self.md5 is None:
            raise ValueError(f"{self.filename}: give sha256 or md5; unchecked downloads are not allowed")


def data_dir() -> Path:
    """The cache folder: ``$SNNKIT_DATA`` or ``data/cache`` at the repository root."""
    return Path(os.environ.get("SNNKIT_DATA") or (ROOT / "data" / "cache")).expanduser()


def offline() -> bool:
    return os.environ.get("SNNKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _digests(path: Path):
    s, m = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            s.update(chunk)
            m.update(chunk)
    return s.hexdigest(), m.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _check(spec: RemoteFile, sha, md5, where: str):
    if spec.sha256 is not None:
        if sha != spec.sha256:
            raise ChecksumError(f"{where}: sha256 {sha} differs from the published {spec.sha256}. "
                                "The file is corrupt, truncated or a different version; delete it and "
                                "download it again.")
        return
    if md5 != spec.md5:
        raise ChecksumError(f"{where}: md5 {md5} differs from the published {spec.md5}. "
                            "Delete it and download it again.")
    warnings.warn(f"{spec.filename}: no sha256 has been published for this file; it was checked "
                  f"with md5 only ({spec.note or 'see data/README.md'}).", stacklevel=3)


def _is_verified(spec: RemoteFile, path: Path) -> bool:
    try:
        st, rec = path.stat(), json.loads(_stamp(path).read_text())
    except (OSError, ValueError):
        return False
    want = spec.sha256 if spec.sha256 is not None else spec.md5
    return rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns and rec.get("digest") == want


def _write_stamp(spec: RemoteFile, path: Path):
    st = path.stat()
    rec = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
           "digest": spec.sha256 if spec.sha256 is not None else spec.md5,
           "algorithm": "sha256" if spec.sha256 is not None else "md5"}
    tmp = _stamp(path).with_name(_stamp(path).name + f".part-{os.getpid()}")
    tmp.write_text(json.dumps(rec))
    os.replace(tmp, _stamp(path))


def verify(spec: RemoteFile, path: Path) -> Path:
    """Hash ``path`` against ``spec`` (once; the result is stamped next to the file)."""
    path = Path(path)
    if _is_verified(spec, path):
        return path
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ChecksumError(f"{path}: {path.stat().st_size} bytes, the published file has {spec.size}. "
                            "It is truncated or a different version; delete it and download it again.")
    sha, md5 = _digests(path)
    _check(spec, sha, md5, str(path))
    try:
        _write_stamp(spec, path)
    except OSError as e:       # read-only cache: the file is correct; it is hashed again on the next load
        warnings.warn(f"{path} is correct, but its '.verified' stamp cannot be written ({e}); the file will be "
                      "hashed again on every load. Make the cache folder writable to keep the stamp.",
                      RuntimeWarning, stacklevel=2)
    return path


def _urlopen(url, timeout):            # the one network call (tests replace it)
    return urllib.request.urlopen(url, timeout=timeout)


def _manual_hint(spec: RemoteFile, path: Path) -> str:
    digest = f"sha256 {spec.sha256}" if spec.sha256 else f"md5 {spec.md5}"
    alt = spec.unpacked
    return (f"Download {spec.urls[0]} by hand and save it as {path} ({digest}"
            + (f", {spec.size} bytes" if spec.size else "") + ")"
            + (f" or its decompressed content as {path.with_name(alt.filename)} (sha256 {alt.sha256})"
               if alt is not None else "")
            + ", or set SNNKIT_DATA to a folder that already holds it.")


def _download(spec: RemoteFile, url: str, path: Path, timeout: float, progress: bool):
    """Stream ``url`` into a temporary file beside ``path``; rename only when the digest matches."""
    tmp = path.with_name(f"{path.name}.part-{os.getpid()}")
    s, m, n = hashlib.sha256(), hashlib.md5(), 0
    try:
        with _urlopen(url, timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) if hasattr(r, "headers") else 0
            for chunk in iter(lambda: r.read(CHUNK), b""):
                f.write(chunk)
                s.update(chunk)
                m.update(chunk)
                n += len(chunk)
                if progress and total:
                    print(f"\r[snnkit] {spec.filename}: {n / 1e6:.1f} / {total / 1e6:.1f} MB", end="",
                          file=sys.stderr, flush=True)
            f.flush()
            os.fsync(f.fileno())
        if progress and total:
            print(file=sys.stderr)
        if total and n != total:
            raise ChecksumError(f"{url}: the download stopped after {n} of {total} bytes")
        if spec.size is not None and n != spec.size:
            raise ChecksumError(f"{url}: got {n} bytes, the published file has {spec.size}")
        _check(spec, s.hexdigest(), m.hexdigest(), url)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_stamp(spec, path)


def fetch(spec: RemoteFile, subdir: str = "", timeout: float = 10.0, progress: bool = True) -> Path:
    """Local path of ``spec`` in the cache, downloading and verifying it when needed."""
    folder = data_dir() / subdir
    path = folder / spec.filename
    if path.exists():
        return verify(spec, path)
    if spec.unpacked is not None and (folder / spec.unpacked.filename).exists():
        return verify(spec.unpacked, folder / spec.unpacked.filename)
    if offline():
        raise DatasetUnavailable(f"{spec.filename} is not in the cache and SNNKIT_OFFLINE is set. "
                                 + _manual_hint(spec, path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise DatasetUnavailable(f"{spec.filename} is not in the cache, and the cache folder {folder} cannot be "
                                 "written to download it (read-only). Set SNNKIT_DATA to a writable folder, or "
                                 + _manual_hint(spec, path)[0].lower() + _manual_hint(spec, path)[1:])
    errors = []
    for url in spec.urls:
        try:
            if progress:
                print(f"[snnkit] downloading {url} -> {path}", file=sys.stderr, flush=True)
            _download(spec, url, path, timeout, progress)
            return path
        except ChecksumError as e:
            errors.append(f"{url}: {e}")
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
            errors.append(f"{url}: {type(e).__name__}: {getattr(e, 'reason', e)}")
    raise DatasetUnavailable(f"could not download {spec.filename} (no network, or every mirror failed):\n  "
                             + "\n  ".join(errors) + "\n" + _manual_hint(spec, path))
