"""Parsers for the original file formats: idx (MNIST family, LeCun et al.) and the CIFAR-10 binary batches.

Both are raw bytes; nothing is unpickled. Parsers validate sizes and raise :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ddzoo.errors import ChecksumError, DataError

_IDX_DTYPES = {0x08: np.uint8}
CIFAR_RECORD = 1 + 3 * 32 * 32


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Parse an (uncompressed) idx file: magic 0x0000TTDD, DD big-endian uint32 dims, then the data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{source}: not an idx file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated idx header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{source}: idx file holds {len(data)} bytes, its header promises {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def parse_cifar_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR-10 binary batch: records of 1 label byte + 3072 CHW pixel bytes."""
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DataError(f"{source}: {len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def read_blobs(path: Path, filename: str | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, content)`` of an original file: a gzip's content under its file name, a tar
    archive's regular members under their paths. ``filename`` (default: the path's) decides the format,
    so a download can be checked under its temporary name. Corrupt files raise :class:`DataError`."""
    filename = filename or path.name
    try:
        if filename.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile():
                        handle = archive.extractfile(member)
                        if handle is not None:
                            yield member.name, handle.read()
        elif filename.endswith(".gz"):
            yield filename, gzip.decompress(path.read_bytes())
        else:
            yield filename, path.read_bytes()
    except (OSError, EOFError, tarfile.TarError) as err:
        raise DataError(f"{path}: unreadable or truncated ({err}); delete it and fetch it again") from err


def verified_blobs(path: Path, expected: dict[str, str], filename: str | None = None) -> dict[str, bytes]:
    """The blobs of ``path`` named in ``expected``, each checked against its sha256."""
    found = {}
    for name, content in read_blobs(path, filename):
        if name in expected:
            actual = sha256_bytes(content)
            if actual != expected[name]:
                raise ChecksumError(f"{path.parent / (filename or path.name)}[{name}]", expected[name], actual,
                                    "the file is damaged or not the original: delete it and fetch it again")
            found[name] = content
    missing = sorted(set(expected) - set(found))
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; delete it and fetch it again")
    return found
