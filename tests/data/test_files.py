"""Labelled images a user brings (.npz or class folders of PNGs): read exactly, refused when crafted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddzoo.data.files import load_labelled_images
from ddzoo.errors import InvalidArgumentError


def test_npz_in_any_layout_and_png_folders_give_the_same_pixels(mnist_test, tmp_path):
    from PIL import Image

    x, y = mnist_test.tensors(limit=6)
    raw = (x * 255).round().to(torch.uint8).numpy()
    np.savez(tmp_path / "nhwc.npz", images=raw.transpose(0, 2, 3, 1), labels=y.numpy())
    np.savez(tmp_path / "float.npz", x=x.numpy(), y=y.numpy())
    for index, (image, label) in enumerate(zip(raw, y.tolist(), strict=True)):
        (tmp_path / "pngs" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(tmp_path / "pngs" / str(label) / f"{index:03d}.png")
    for source in ("nhwc.npz", "float.npz"):
        got_x, got_y = load_labelled_images(tmp_path / source)
        torch.testing.assert_close(got_x, x, atol=1 / 255, rtol=0)
        assert torch.equal(got_y, y) and got_x.shape == (6, 1, 28, 28)
    folder_x, folder_y = load_labelled_images(tmp_path / "pngs", limit=4)
    assert folder_x.shape == (4, 1, 28, 28) and sorted(folder_y.tolist()) == folder_y.tolist()


@pytest.mark.parametrize(("arrays", "message"), [
    ({"images": np.array([object()] * 2, dtype=object), "labels": np.array([0, 1])}, "not a readable .npz"),
    ({"images": np.zeros((2, 5, 28, 28), np.uint8), "labels": np.array([0, 1])}, "1 or 3 channels"),
    ({"images": np.zeros((2, 28, 28), np.uint8), "labels": np.array([0, -1])}, "negative labels"),
    ({"images": np.zeros((2, 28, 28), np.uint8), "labels": np.array([0.5, 1])}, "labels must be N integers"),
    ({"images": np.full((2, 28, 28), 3.0), "labels": np.array([0, 1])}, "in \\[0, 1\\]"),
    ({"pictures": np.zeros((2, 28, 28), np.uint8)}, "no array named images"),
])
def test_crafted_npz_is_refused_in_one_line(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InvalidArgumentError, match=message):
        load_labelled_images(path)
