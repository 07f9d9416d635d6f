"""tools/fashion_mnist_from_debian.py: Debian's re-headed gzip files turned back into the
publisher's, byte for byte (here on a small file gzipped the way the publisher's were)."""
import gzip
import importlib.util
import io
import struct
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "fashion_mnist_from_debian", Path(__file__).resolve().parent.parent / "tools" / "fashion_mnist_from_debian.py")
tool = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tool)


def _publisher_gz(name, payload):
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=tool.MTIME[name]) as f:
        f.write(payload)
    return buf.getvalue()


def _debian(gz, name):
    """What Debian shipped: no FNAME, flags 0, its own time stamp; the deflate stream unchanged."""
    assert gz[3] == 0x08
    return b"\x1f\x8b\x08\x00" + struct.pack("<I", 1591347949) + gz[8:10] + gz[10 + len(name) + 1:]


@pytest.mark.parametrize("name", sorted(tool.MTIME))
def test_restore_gives_back_the_publisher_file(name):
    payload = bytes(range(256)) * 37 + name.encode()
    original = _publisher_gz(name, payload)
    shipped = _debian(original, name)
    assert len(original) - len(shipped) == len(name) + 1       # the 23-24 bytes Debian's files lack
    assert tool.restore(name, shipped) == original
    assert gzip.decompress(tool.restore(name, shipped)) == payload


def test_restore_refuses_a_header_it_does_not_know():
    with pytest.raises(ValueError, match="gzip header without flags"):
        tool.restore("t10k-labels-idx1-ubyte", _publisher_gz("t10k-labels-idx1-ubyte", b"x"))
