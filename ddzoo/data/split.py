"""A loaded split of a dataset: its images and labels, as float tensors or shuffled, augmented batches.

Example:
    >>> split = load_split("mnist", "test")
    >>> x, y = split.tensors(limit=100)   # float32 (100, 1, 28, 28) in [0, 1], int64 (100,)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ddzoo.data.catalog import DatasetInfo, get_dataset_info
from ddzoo.data.sources import load_arrays
from ddzoo.data.transforms import cifar_augment
from ddzoo.errors import InvalidArgumentError

# Training-split augmentation per dataset (the MNIST family is used as is, as in the paper).
AUGMENTATIONS = {"cifar10": cifar_augment}


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images (N, C, H, W) and int64 labels (N,)."""

    info: DatasetInfo
    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def tensors(self, limit: int | None = None, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` samples from ``start`` as float32 pixels in [0, 1] and int64 labels."""
        if limit is not None and limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1, got {limit}")
        stop = len(self) if limit is None else min(len(self), start + limit)
        x = torch.from_numpy(self.images[start:stop]).float().div_(255.0)
        return x, torch.from_numpy(self.labels[start:stop].copy())  # a copy: callers may edit labels

    def batches(self, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield float32 batches; ``augment`` applies the dataset's training augmentation, if it has one."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        transform = AUGMENTATIONS.get(self.info.name) if augment else None
        for begin in range(0, len(self), batch_size):
            index = order[begin : begin + batch_size].numpy()
            x = torch.from_numpy(self.images[index]).float().div_(255.0)
            if transform is not None:
                x = transform(x, generator)
            yield x, torch.from_numpy(self.labels[index])


def load_split(name: str, split: str = "test") -> Split:
    """Load one split of a dataset from the first available source (see :mod:`ddzoo.data.sources`).

    Args:
        name: one of :func:`list_datasets` (``mnist``, ``fashion-mnist``, ``cifar10``).
        split: ``train`` or ``test``.

    Raises:
        UnknownNameError: unknown dataset (the message lists the valid ones).
        DataError: a file is truncated, damaged or fails its checksum (the message names it).
    """
    info = get_dataset_info(name)
    images, labels = load_arrays(info, split)
    expected = info.sizes[split]
    if len(labels) != expected or images.shape[1:] != info.image_shape:
        raise InvalidArgumentError(
            f"{name}/{split}: got {images.shape} images, expected {expected} of shape {info.image_shape}")
    return Split(info, split, images, labels)


def check_dataset(name: str) -> list[dict]:
    """Load both splits of dataset ``name``, verifying every checksum; per split its image array's shape and
    the count of each label (what ``zoo data check`` prints)."""
    rows = []
    for split in ("train", "test"):
        loaded = load_split(name, split)
        rows.append({"dataset": name, "split": split, "images": list(loaded.images.shape),
                     "label_counts": [int((loaded.labels == c).sum()) for c in range(loaded.info.num_classes)]})
    return rows
