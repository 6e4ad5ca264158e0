"""Labelled images a user brings: one ``.npz`` file, or a folder with one sub-folder of PNGs per class index.

Either may be crafted: sizes are bounded before anything is read, arrays are loaded without pickle, and
every shape, dtype and label is checked. Images come back as float32 (N, C, H, W) pixels in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ddzoo.errors import InvalidArgumentError
from ddzoo.optional import require

MAX_NPZ_BYTES = 2 << 30
MAX_PNG_BYTES = 16 << 20
IMAGE_KEYS, LABEL_KEYS = ("images", "x"), ("labels", "y")


def load_labelled_images(path: Path | str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` from ``path``: an .npz with ``images`` (N, H, W[, C]) or (N, C, H, W), uint8 in [0, 255] or
    float in [0, 1], and integer ``labels``; or a folder ``0/*.png``, ``1/*.png``, ... (sorted, ``limit`` first)."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, limit)
    if path.suffix != ".npz" or not path.is_file():
        raise InvalidArgumentError(f"{path}: give an .npz file (images, labels) or a folder of class folders of PNGs")
    if path.stat().st_size > MAX_NPZ_BYTES:
        raise InvalidArgumentError(f"{path}: larger than {MAX_NPZ_BYTES >> 30} GiB; pass fewer images")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images = _first(archive, IMAGE_KEYS, path)[:limit]
            labels = _first(archive, LABEL_KEYS, path)[:limit]
    except (ValueError, OSError) as err:
        raise InvalidArgumentError(f"{path}: not a readable .npz of arrays ({err})") from None
    return _checked(images, labels, path)


def _first(archive, keys: tuple[str, ...], path: Path) -> np.ndarray:
    for key in keys:
        if key in archive.files:
            return archive[key]
    raise InvalidArgumentError(f"{path}: no array named {' or '.join(keys)} (it has {archive.files})")


def _from_folder(folder: Path, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    image_module = require("PIL.Image", "reading PNG images", extra="report")
    classes = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    files = [(f, int(c.name)) for c in classes for f in sorted(c.glob("*.png")) if not f.is_symlink()]
    files = files[:limit]
    if not files:
        raise InvalidArgumentError(f"{folder}: no PNGs under class folders named 0, 1, ...")
    images = []
    for file, _ in files:
        if file.stat().st_size > MAX_PNG_BYTES:
            raise InvalidArgumentError(f"{file}: larger than {MAX_PNG_BYTES >> 20} MiB")
        with image_module.open(file) as image:
            images.append(np.asarray(image.convert("L" if image.mode in ("L", "1", "I;16") else "RGB")))
    if len({a.shape for a in images}) != 1:
        raise InvalidArgumentError(f"{folder}: the images differ in size; give images of one size")
    return _checked(np.stack(images), np.array([label for _, label in files]), folder)


def _checked(images: np.ndarray, labels: np.ndarray, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidArgumentError(f"{path}: labels must be N integers, one per image")
    if len(labels) == 0 or (labels < 0).any():
        raise InvalidArgumentError(f"{path}: no images, or negative labels")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    elif images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InvalidArgumentError(f"{path}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 "
                                   f"channels, got {list(images.shape)}")
    if images.dtype == np.uint8:
        x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    elif np.issubdtype(images.dtype, np.floating):
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise InvalidArgumentError(f"{path}: float images must be finite and in [0, 1]")
    else:
        raise InvalidArgumentError(f"{path}: images must be uint8 or float, got {images.dtype}")
    return x, torch.from_numpy(labels.astype(np.int64))
