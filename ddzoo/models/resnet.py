"""CIFAR ResNets (He, Zhang, Ren, Sun. Deep Residual Learning. CVPR 2016, sec. 4.2).

Three stages of 16/32/64 channels with n basic blocks each (depth 6n + 2); downsampling shortcuts are the
paper's parameter-free option A (stride-2 subsampling, zero-padded channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.models.registry import ModelSpec, register_model


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (option A) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
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
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 inputs."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(channels, width, stride))
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


register_model(ModelSpec("resnet20", resnet20, (3, 32, 32), ("cifar10",), 269_722,
                         "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016",
                         channels_last=True))
