"""CIFAR augmentation without torchvision: random crop with 4-pixel padding and horizontal flip."""

import torch

from ddzoo.data.transforms import cifar_augment, random_crop, random_hflip


def test_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(padded[i, :, dy:dy + 8, dx:dx + 8], out[i])]
        assert matches, "each crop is a window of the zero-padded image"


def test_flip_probability_and_content():
    x = torch.rand(2000, 1, 2, 3)
    out = random_hflip(x, generator=torch.Generator().manual_seed(1))
    flipped = (out == x.flip(-1)).flatten(1).all(1) & ~(out == x).flatten(1).all(1)
    assert 0.45 < flipped.float().mean() < 0.55
    assert ((out == x).flatten(1).all(1) | flipped).all()


def test_augmentation_only_on_the_cifar_training_batches(data_dir):
    from ddzoo.data import load_split

    train = load_split("cifar10", "train")
    g = torch.Generator().manual_seed(0)
    plain = next(train.batches(64))
    augmented = next(train.batches(64, augment=True, generator=g))
    assert not torch.equal(plain[0], augmented[0]) and torch.equal(plain[1], augmented[1])
    mnist = load_split("mnist", "train")
    assert torch.equal(next(mnist.batches(8, augment=True))[0], next(mnist.batches(8))[0])
    a = cifar_augment(plain[0], torch.Generator().manual_seed(5))
    b = cifar_augment(plain[0], torch.Generator().manual_seed(5))
    assert torch.equal(a, b)  # deterministic for a seed
