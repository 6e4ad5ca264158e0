"""l∞ gradient-sign attacks: FGS (Goodfellow et al. 2015) and BIM (Kurakin et al. 2017).

Both attack the true labels with the cross-entropy loss and keep images inside ``bounds``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad


def fgs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
        bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Fast gradient sign: ``clip(x + eps · sign(∇ CE))``."""
    return (x + eps * _loss_gradient(model, x, y).sign()).clamp(*bounds).detach()


def bim(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step_size: float | None = None, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Basic iterative method: ``steps`` FGS steps of ``step_size`` (default ``2.5·eps/steps``), each
    projected onto the eps-ball around x and the box."""
    alpha = 2.5 * eps / steps if step_size is None else step_size
    adv = x.detach().clone()
    for _ in range(steps):
        adv = adv + alpha * _loss_gradient(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(*bounds).detach()
    return adv
