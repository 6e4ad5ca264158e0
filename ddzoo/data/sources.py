"""Find a dataset's real files and load one split as uint8 NCHW images and int64 labels.

Sources, in order: ``ZOO_DATA_DIR`` (``.npz`` files laid out as in ``shared/data``), Debian's
``dataset-*`` packages (idx files), the ddzoo cache, then a download of the originals into the cache.
Every file is checked against its sha256 before use; a damaged file is an error, never skipped silently.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ddzoo import constants
from ddzoo.data.catalog import SPLITS, DatasetInfo, RemoteFile
from ddzoo.data.formats import parse_cifar_batch, parse_idx, verified_blobs
from ddzoo.errors import ChecksumError, DataError, DatasetNotFoundError, InvalidArgumentError, echo
from ddzoo.fileio import sha256_file

_IDX_PREFIX = {"train": "train", "test": "t10k"}
_CIFAR_MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def checked_file(path: Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected`` (memoised per size and mtime), else raise."""
    stat = path.stat()
    actual = _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise ChecksumError(path, expected, actual, "replace it with an intact copy (see SHA256SUMS)")
    return path


def _from_npz(info: DatasetInfo, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    names = [n for n in info.npz_files if ("test" in n) == (split == "test") or len(info.npz_files) == 1]
    paths = [folder / n for n in names]
    if not all(p.is_file() for p in paths):
        return None
    xs, ys = [], []
    for path in paths:
        checked_file(path, info.npz_files[path.name])
        try:
            with np.load(path, allow_pickle=False) as archive:
                xs.append(archive[f"x_{split}"])
                ys.append(archive[f"y_{split}"])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: cannot read x_{split}/y_{split} ({err})") from err
    images = np.concatenate(xs)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), np.concatenate(ys).astype(np.int64)


def _from_originals(info: DatasetInfo, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse the original files of ``info`` found in ``folder`` (None if any is absent)."""
    if not all((folder / f.filename).is_file() for f in info.originals):
        return None
    blobs: dict[str, bytes] = {}
    for remote in info.originals:
        blobs.update(verified_blobs(folder / remote.filename, remote.blob_sha256))
    if info.original_format == "idx":
        prefix = _IDX_PREFIX[split]
        images = parse_idx(blobs[f"{prefix}-images-idx3-ubyte.gz"], f"{folder}/{prefix}-images")
        labels = parse_idx(blobs[f"{prefix}-labels-idx1-ubyte.gz"], f"{folder}/{prefix}-labels")
        if len(images) != len(labels):
            raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
        return np.ascontiguousarray(images[:, None]), labels.astype(np.int64)
    parts = [parse_cifar_batch(blobs[m], m) for m in _CIFAR_MEMBERS[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cache_dir(info: DatasetInfo) -> Path:
    return constants.ZOO_HOME / "datasets" / info.name


def download_originals(info: DatasetInfo, folder: Path | None = None) -> Path:
    """Download the original files of ``info`` into ``folder`` (default: the cache), atomically.

    Each file lands under a temporary name, is checked against its sha256 and only then renamed, so
    an interrupted or corrupt download never leaves a file under the final name.
    """
    folder = folder or cache_dir(info)
    if constants.OFFLINE:
        raise DatasetNotFoundError(
            f"{info.name} is not available locally and ZOO_OFFLINE is set; set ZOO_DATA_DIR to a folder of "
            f"the .npz files ({', '.join(info.npz_files)}) or unset ZOO_OFFLINE to download it")
    folder.mkdir(parents=True, exist_ok=True)
    for remote in info.originals:
        target = folder / remote.filename
        if not target.is_file():
            _download_one(remote, target)
    return folder


def _download_one(remote: RemoteFile, target: Path) -> None:
    errors = []
    for url in remote.urls:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                url, timeout=constants.DOWNLOAD_TIMEOUT_S
            ) as response:
                _copy_with_progress(response, out, int(response.headers.get("Content-Length") or 0), url)
            verified_blobs(tmp, remote.blob_sha256, filename=target.name)
            os.replace(tmp, target)
            return
        except (OSError, urllib.error.URLError, DataError) as err:
            errors.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DatasetNotFoundError(f"could not download {remote.filename}: " + "; ".join(errors))


def _copy_with_progress(response, out, total: int, label: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total or None, unit="B", unit_scale=True, desc=label.rsplit("/", 1)[-1],
              disable=not sys.stderr.isatty(), leave=False) as bar:
        while block := response.read(1 << 16):
            out.write(block)
            bar.update(len(block))


def load_arrays(info: DatasetInfo, split: str, *, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split, from the first source that has them."""
    if split not in SPLITS:
        raise InvalidArgumentError(f"unknown split {echo(split)}; choose one of: {', '.join(SPLITS)}")
    candidates = []
    if constants.ZOO_DATA_DIR is not None:
        candidates.append(lambda: _from_npz(info, split, constants.ZOO_DATA_DIR))
    if info.debian_dir:
        candidates.append(lambda: _from_originals(info, split, constants.DEBIAN_DATASETS_DIR / info.debian_dir))
    candidates.append(lambda: _from_originals(info, split, cache_dir(info)))
    for candidate in candidates:
        arrays = candidate()
        if arrays is not None:
            return arrays
    if not download:
        raise DatasetNotFoundError(f"{info.name} is not available locally; set ZOO_DATA_DIR")
    return _from_originals(info, split, download_originals(info))
