"""Batched inference helpers: predicted labels and top-1 accuracy."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict_labels(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Predicted labels of ``x`` (on the CPU), in batches."""
    device = device or next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1000,
             device: torch.device | str | None = None) -> float:
    """Top-1 accuracy in [0, 1]."""
    return (predict_labels(model, x, batch_size=batch_size, device=device) == y.cpu()).float().mean().item()
