"""Loss-gradient attacks: FGS (Goodfellow et al. 2015), BIM (Kurakin et al. 2017), PGD (Madry et al. 2018,
l∞ and l2, random start) and N-FGSM (de Jorge et al. 2022, the noisy single step of fast adversarial training).

All attack the true labels with the cross-entropy loss and keep images inside ``bounds``.
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


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: str = "linf", steps: int = 10,
        step_size: float | None = None, random_start: bool = True, generator: torch.Generator | None = None,
        bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Projected gradient descent on the cross-entropy within the ``norm`` ball of radius ``eps`` (l∞: sign
    steps; l2: normalised gradient steps), from a uniform random start in the ball (default step ``2.5·eps/steps``)."""
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach()

    def project(adv: torch.Tensor) -> torch.Tensor:
        delta = adv - x
        if norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
            delta = delta * scale.view(-1, *([1] * (x.dim() - 1)))
        return (x + delta).clamp(*bounds)

    adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1
        if norm == "l2":  # a direction on the sphere times a radius uniform in the ball's volume
            noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
            radius = torch.rand(x.shape[0], generator=generator).to(x) ** (1.0 / x[0].numel())
            noise = noise * radius.view(-1, *([1] * (x.dim() - 1)))
        adv = project(x + eps * noise)
    for _ in range(steps):
        grad = _loss_gradient(model, adv, y)
        if norm == "linf":
            step = grad.sign()
        else:
            step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        adv = project(adv + alpha * step).detach()
    return adv


def noisy_fgs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, noise: float = 2.0,
              step_size: float | None = None, generator: torch.Generator | None = None,
              bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """N-FGSM (de Jorge et al., NeurIPS 2022): from ``x + η``, η uniform in ``[−noise·eps, noise·eps]``, one sign
    step of ``step_size`` (default ``eps``), not projected back onto the eps-ball (only onto the box). The paper's
    k = 2, α = ε avoid the catastrophic overfitting of FGSM with random start at ε = 8/255 for the same cost."""
    alpha = eps if step_size is None else step_size
    x = x.detach()
    start = x + noise * eps * (torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1)
    return (start + alpha * _loss_gradient(model, start, y).sign()).clamp(*bounds).detach()
