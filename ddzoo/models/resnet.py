"""CIFAR ResNets (He, Zhang, Ren, Sun. Deep Residual Learning. CVPR 2016, sec. 4.2).

Three stages of 16/32/64 channels with n basic blocks each (depth 6n + 2); downsampling shortcuts are the
paper's parameter-free option A (stride-2 subsampling, zero-padded channels). ``resnet20-parseval`` is the
same network with Parseval networks' convex residual aggregation, ReLU(½·f(x) + ½·shortcut(x)) (Cissé et al.
2017, sec. 3.2), so that a block of 1-Lipschitz layers stays 1-Lipschitz.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.models.registry import ModelSpec, register_model


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (option A) shortcut, summed, or with ``residual_weight`` w combined
    convexly: w·f(x) + (1 − w)·shortcut(x)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual_weight: float | None = None):
        super().__init__()
        self.residual_weight = residual_weight
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.extra_channels == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual_weight is None:
            return F.relu(out + self.shortcut(x))
        return F.relu(self.residual_weight * out + (1 - self.residual_weight) * self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 inputs."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, residual_weight: float | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(channels, width, stride, residual_weight))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


def resnet20(num_classes: int = 10) -> nn.Module:
    """ResNet-20 (3 blocks per stage, 0.27 M parameters)."""
    return CifarResNet(3, num_classes)


def resnet20_parseval(num_classes: int = 10) -> nn.Module:
    """ResNet-20 with convex residual aggregation (weight ½), the Parseval recipe's form of ``resnet20``."""
    return CifarResNet(3, num_classes, residual_weight=0.5)


register_model(ModelSpec("resnet20", resnet20, (3, 32, 32), ("cifar10",), 269_722,
                         "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016",
                         channels_last=True))
register_model(ModelSpec("resnet20-parseval", resnet20_parseval, (3, 32, 32), ("cifar10",), 269_722,
                         "Cissé, Bojanowski, Grave, Dauphin, Usunier. Parseval Networks. ICML 2017 (ResNet-20 with "
                         "convex residual aggregation)", channels_last=True))
