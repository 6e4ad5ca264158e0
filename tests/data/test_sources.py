"""Every source path with small files made here: npz checks, idx / CIFAR parsing, Debian, cache, download."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import shutil
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from ddzoo import constants
from ddzoo.data import load_split
from ddzoo.data.catalog import MNIST, DatasetInfo, RemoteFile
from ddzoo.data.formats import parse_cifar_batch, parse_idx
from ddzoo.data.sources import cache_dir, download_originals, load_arrays
from ddzoo.errors import ChecksumError, DataError, DatasetNotFoundError, InvalidArgumentError

RNG = np.random.default_rng(0)


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x800 | array.ndim
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def tiny_idx_dataset(folder: Path, n: int = 12) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
    """Write a 4-file idx dataset (gzipped) and a DatasetInfo whose checksums match it."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images": RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "train-labels": RNG.integers(0, 10, n, dtype=np.uint8),
              "t10k-images": RNG.integers(0, 256, (n // 2, 28, 28), dtype=np.uint8),
              "t10k-labels": RNG.integers(0, 10, n // 2, dtype=np.uint8)}
    sums = {}
    for stem, array in arrays.items():
        name = f"{stem}-idx{array.ndim}-ubyte.gz"
        raw = idx_bytes(array)
        (folder / name).write_bytes(gzip.compress(raw))
        sums[name] = hashlib.sha256(raw).hexdigest()
    originals = tuple(RemoteFile(name, (f"URL/{name}",), {name: sha}) for name, sha in sums.items())
    info = dataclasses.replace(MNIST, name="tiny", sizes={"train": n, "test": n // 2}, originals=originals,
                               npz_files={"tiny.npz": "0" * 64}, debian_dir="tiny")
    return info, arrays


# --- formats ---------------------------------------------------------------------------------------------

def test_parse_idx_round_trip_and_errors():
    array = RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(array), "x"), array)
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x08\x03" + idx_bytes(array)[4:], "bad.idx")
    with pytest.raises(DataError, match="truncated.idx: idx file holds"):
        parse_idx(idx_bytes(array)[:-7], "truncated.idx")


def test_parse_cifar_batch():
    labels = np.array([3, 7], dtype=np.uint8)
    images = RNG.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    blob = b"".join(bytes([label]) + im.tobytes() for label, im in zip(labels, images, strict=True))
    x, y = parse_cifar_batch(blob, "b")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [3, 7]
    with pytest.raises(DataError, match="not a whole number"):
        parse_cifar_batch(blob[:-1], "short.bin")


# --- ZOO_DATA_DIR ----------------------------------------------------------------------------------------

def test_truncated_npz_refused_with_path_and_expected_checksum(data_dir, tmp_path, monkeypatch):
    damaged = tmp_path / "mnist.npz"
    damaged.write_bytes((data_dir / "mnist.npz").read_bytes()[:100_000])
    monkeypatch.setattr(constants, "ZOO_DATA_DIR", tmp_path)
    with pytest.raises(ChecksumError) as caught:
        load_split("mnist", "test")
    message = str(caught.value)
    assert str(damaged) in message and MNIST.npz_files["mnist.npz"] in message
    assert message.count("\n") == 0


def test_unknown_split(data_dir):
    with pytest.raises(InvalidArgumentError, match="choose one of: train, test"):
        load_split("mnist", "validation")


# --- Debian, cache and download --------------------------------------------------------------------------

def test_debian_idx_files_are_a_source(tmp_path, monkeypatch):
    info, arrays = tiny_idx_dataset(tmp_path / "debian" / "tiny")
    monkeypatch.setattr(constants, "ZOO_DATA_DIR", None)
    monkeypatch.setattr(constants, "DEBIAN_DATASETS_DIR", tmp_path / "debian")
    images, labels = load_arrays(info, "test")
    np.testing.assert_array_equal(images[:, 0], arrays["t10k-images"])
    np.testing.assert_array_equal(labels, arrays["t10k-labels"])


def test_debian_file_with_wrong_content_is_refused(tmp_path, monkeypatch):
    info, _ = tiny_idx_dataset(tmp_path / "debian" / "tiny")
    bad = tmp_path / "debian" / "tiny" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(np.zeros(6, dtype=np.uint8))))
    monkeypatch.setattr(constants, "ZOO_DATA_DIR", None)
    monkeypatch.setattr(constants, "DEBIAN_DATASETS_DIR", tmp_path / "debian")
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz.*does not match the expected"):
        load_arrays(info, "test")


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown()
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def with_urls(info: DatasetInfo, *bases: str) -> DatasetInfo:
    originals = tuple(dataclasses.replace(f, urls=tuple(f"{b}/{f.filename}" for b in bases)) for f in info.originals)
    return dataclasses.replace(info, originals=originals)


def test_download_verifies_then_caches(tmp_path, http_root, monkeypatch):
    root, base = http_root
    info, arrays = tiny_idx_dataset(root)
    info = with_urls(info, f"{base}/missing-mirror", base)  # the first mirror answers 404
    monkeypatch.setattr(constants, "ZOO_DATA_DIR", None)
    monkeypatch.setattr(constants, "DEBIAN_DATASETS_DIR", tmp_path / "none")
    monkeypatch.setattr(constants, "OFFLINE", False)
    images, labels = load_arrays(info, "train")
    np.testing.assert_array_equal(images[:, 0], arrays["train-images"])
    cached = sorted(p.name for p in cache_dir(info).iterdir())
    assert cached == sorted(f.filename for f in info.originals)  # no temporary files left
    shutil.rmtree(root)  # the cache now serves without the network
    monkeypatch.setattr(constants, "OFFLINE", True)
    np.testing.assert_array_equal(load_arrays(info, "test")[1], arrays["t10k-labels"])


def test_corrupt_download_leaves_nothing_in_the_cache(tmp_path, http_root, monkeypatch):
    root, base = http_root
    info, _ = tiny_idx_dataset(root)
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x00"))
    monkeypatch.setattr(constants, "OFFLINE", False)
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.gz.*does not match the expected"):
        download_originals(with_urls(info, base), tmp_path / "cache")
    leftovers = [p.name for p in (tmp_path / "cache").iterdir()]
    assert "t10k-images-idx3-ubyte.gz" not in leftovers
    assert not [name for name in leftovers if name.startswith(".")]


def test_offline_never_downloads(tmp_path, monkeypatch):
    info, _ = tiny_idx_dataset(tmp_path / "elsewhere")
    info = with_urls(info, "http://127.0.0.1:9")  # would fail loudly if contacted
    monkeypatch.setattr(constants, "ZOO_DATA_DIR", None)
    monkeypatch.setattr(constants, "DEBIAN_DATASETS_DIR", tmp_path / "none")
    with pytest.raises(DatasetNotFoundError, match="ZOO_OFFLINE is set; set ZOO_DATA_DIR"):
        load_arrays(info, "test")
    assert not cache_dir(info).exists()


def test_cifar_binary_archive_members_are_checked(tmp_path):
    from ddzoo.data.catalog import CIFAR10
    from ddzoo.data.sources import _from_originals

    labels = np.arange(10, dtype=np.uint8)
    images = RNG.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)
    blob = b"".join(bytes([label]) + im.tobytes() for label, im in zip(labels, images, strict=True))
    members = {name: blob for name in CIFAR10.originals[0].blob_sha256}
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    info = dataclasses.replace(CIFAR10, originals=(dataclasses.replace(CIFAR10.originals[0], blob_sha256=sums),))
    x, y = _from_originals(info, "train", tmp_path)
    assert x.shape == (50, 3, 32, 32) and y.tolist() == list(range(10)) * 5
    with pytest.raises(ChecksumError, match="data_batch_1.bin"):
        _from_originals(CIFAR10, "train", tmp_path)  # the real checksums refuse these fake batches
