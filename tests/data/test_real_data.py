"""The real datasets load from ZOO_DATA_DIR with the recorded shapes, labels and statistics."""

import numpy as np
import pytest

from ddzoo.data import DATASETS, get_dataset_info, load_split
from ddzoo.errors import UnknownNameError


def test_catalog_checksums_match_the_shipped_sha256sums(data_dir):
    listed = dict(reversed(line.split()) for line in (data_dir / "SHA256SUMS").read_text().splitlines())
    catalog = {name: sha for info in DATASETS.values() for name, sha in info.npz_files.items()}
    assert catalog == listed


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_splits_load_with_recorded_statistics(data_dir, name):
    info = get_dataset_info(name)
    train = load_split(name, "train")
    test = load_split(name, "test")
    assert train.images.shape == (info.sizes["train"], *info.image_shape) and train.images.dtype == np.uint8
    assert test.images.shape == (info.sizes["test"], *info.image_shape)
    assert np.bincount(test.labels, minlength=10).min() >= 800  # every class present
    pixels = train.images.astype(np.float64) / 255
    axes = (0, 2, 3)
    np.testing.assert_allclose(pixels.mean(axis=axes), info.mean, atol=1e-3)
    np.testing.assert_allclose(pixels.std(axis=axes), info.std, atol=1e-3)
    x, y = test.tensors(limit=8)
    assert x.dtype.is_floating_point and 0 <= x.min() and x.max() <= 1 and x.shape == (8, *info.image_shape)
    assert y.tolist() == test.labels[:8].tolist()
    y[:] = -1  # the tensors are the caller's: editing them leaves the dataset intact
    assert test.labels[:8].min() >= 0


def test_known_first_labels(data_dir):
    # From ../shared/data/README.md: the original sample order is kept.
    assert load_split("cifar10", "train").labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert load_split("cifar10", "test").labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match="choose one of: cifar10, fashion-mnist, mnist"):
        load_split("svhn")
