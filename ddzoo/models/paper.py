"""The architectures of the Deep Defense paper (Yan et al. 2018, sec. 4), as specified in deep-defense.md."""

from __future__ import annotations

from torch import nn

from ddzoo.models.registry import ModelSpec, register_model

_PAPER = "Yan, Guo, Zhang. Deep Defense. NeurIPS 2018"


def mlp(num_classes: int = 10) -> nn.Module:
    """MNIST MLP: 784 → 500 → ReLU → 150 → ReLU → classes."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 150), nn.ReLU(), nn.Linear(150, num_classes)
    )


def lenet(num_classes: int = 10) -> nn.Module:
    """MatConvNet's LeNet: two 5×5 convolutions with max-pooling and no ReLU, then fc 800 → 500 → classes."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, num_classes),
    )


def convnet(num_classes: int = 10) -> nn.Module:
    """The paper's CIFAR-10 ConvNet (MatConvNet's cifar LeNet variant)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(64, 64, 4), nn.ReLU(),
        nn.Conv2d(64, num_classes, 1), nn.Flatten(),
    )


register_model(ModelSpec("mlp", mlp, (1, 28, 28), ("mnist", "fashion-mnist"), 469_160, _PAPER))
register_model(ModelSpec("lenet", lenet, (1, 28, 28), ("mnist", "fashion-mnist"), 431_080, _PAPER))
register_model(ModelSpec("convnet", convnet, (3, 32, 32), ("cifar10",), 145_578, _PAPER))
