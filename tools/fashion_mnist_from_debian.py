"""Fashion-MNIST's original files from Debian's package ``dataset-fashion-mnist``.

The package (``apt-get download dataset-fashion-mnist``; 0.0~git20200523.55506a9-1) ships the four
``.gz`` files with the same deflate streams as the publisher's, but Debian re-wrote their gzip
headers: the stored file name (FNAME) was dropped and the time stamp set to the packaging date, so
each file is 23-24 bytes shorter and its sha256 differs from the published one. Restoring the
header (FNAME flag and name, and the original time stamps below, found by matching the published
sha256) gives back the publisher's files byte for byte; snnkit's loader then checks every file
against the sha256 pinned in ``snnkit/datasets/real.py`` (TensorFlow Datasets' values), so a wrong
reconstruction can never be used.

    apt-get download dataset-fashion-mnist
    python tools/fashion_mnist_from_debian.py dataset-fashion-mnist_*.deb  [--out $SNNKIT_DATA/fashion_mnist]
"""
from __future__ import annotations

import argparse
import io
import lzma
import os
import struct
import sys
import tarfile
from pathlib import Path

# the publisher's gzip time stamps (2017-08-31 10:50:06 and 10:50:27 UTC), found by search: with
# them each rebuilt file has exactly the published sha256
MTIME = {"train-images-idx3-ubyte": 1504176606, "train-labels-idx1-ubyte": 1504176606,
         "t10k-images-idx3-ubyte": 1504176627, "t10k-labels-idx1-ubyte": 1504176627}
IN_DEB = "./usr/share/datasets/fashion-mnist/"


def _ar_members(blob: bytes):
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package (.deb is an ar archive starting with '!<arch>')")
    pos = 8
    while pos + 60 <= len(blob):
        head = blob[pos:pos + 60]
        name, size = head[:16].decode().strip().rstrip("/"), int(head[48:58].decode().strip())
        yield name, blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)


def debian_gz_files(deb: Path) -> dict[str, bytes]:
    """{'train-images-idx3-ubyte': gz bytes as Debian ships them, ...} read from the .deb."""
    for name, data in _ar_members(deb.read_bytes()):
        if name.startswith("data.tar"):
            raw = lzma.decompress(data) if name.endswith(".xz") else data
            if name.endswith(".zst"):
                raise ValueError("data.tar.zst: unpack the .deb with dpkg-deb -x and pass the folder instead")
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                return {m.name[len(IN_DEB):-3]: tar.extractfile(m).read()
                        for m in tar.getmembers() if m.name.startswith(IN_DEB) and m.name.endswith(".gz")}
    raise ValueError(f"{deb}: no data.tar member")


def restore(name: str, gz: bytes) -> bytes:
    """The publisher's gzip file: Debian's deflate stream under the original header."""
    if gz[:4] != b"\x1f\x8b\x08\x00":
        raise ValueError(f"{name}.gz: expected a gzip header without flags (Debian's), got {gz[:4].hex()}")
    header = b"\x1f\x8b\x08\x08" + struct.pack("<I", MTIME[name]) + gz[8:10] + name.encode() + b"\x00"
    return header + gz[10:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="the .deb, or a folder holding Debian's four .gz files")
    ap.add_argument("--out", default=None, help="default: $SNNKIT_DATA/fashion_mnist (data/cache/fashion_mnist)")
    a = ap.parse_args(argv)
    src = Path(a.source)
    files = ({p.name[:-3]: p.read_bytes() for p in src.glob("*.gz")} if src.is_dir() else debian_gz_files(src))
    missing = sorted(set(MTIME) - set(files))
    if missing:
        raise SystemExit(f"{src}: missing {missing}")
    from snnkit.datasets.real import FILES
    from snnkit.datasets.download import data_dir, verify
    out = Path(a.out) if a.out else data_dir() / "fashion_mnist"
    out.mkdir(parents=True, exist_ok=True)
    specs = {s.filename[:-3]: s for s in FILES["fashion_mnist"].values()}
    for name in MTIME:
        path = out / f"{name}.gz"
        tmp = path.with_name(path.name + f".part-{os.getpid()}")
        tmp.write_bytes(restore(name, files[name]))
        os.replace(tmp, path)
        verify(specs[name], path)           # the published sha256, or a ValueError naming the file
        print(f"{path}: sha256 {specs[name].sha256} (the published file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
