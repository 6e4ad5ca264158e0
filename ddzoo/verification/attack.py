"""DeepFool against a deployed artifact, and a gradient-free cross-check.

The artifact gives logits but no gradients. :func:`artifact_deepfool` runs DeepFool with the artifact in the
loop — its own logits for the clean prediction, every step's f' and every success check; gradients from the
reference weights — then moves each perturbation along its direction onto the artifact's own decision boundary
(bisection), so every reported ‖r‖ is a perturbation that fools *that artifact*.
:func:`finite_difference_deepfool` needs the artifact alone: its Jacobian comes from central differences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Protocol

import torch
from torch import nn

from ddzoo.attacks.deepfool import DeepFoolTrace, deepfool_budgets, l2_norms
from ddzoo.runtime import Runner


class Predictor(Protocol):
    """Anything with a Runner's ``predict`` (logits of float32 pixels): a runner, or a module wrapped by
    :class:`ModulePredictor`."""

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...


class ModulePredictor:
    """A torch module as a :class:`Predictor` (no gradients; its logits on the module's device)."""

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass
class ArtifactAttack:
    """Per image: the perturbation fooling the artifact (or the partial one), fooled flag, iterations, the
    perturbation as DeepFool returned it before the line search (``unshrunk``), and the line search's final
    bracket: ``unshrunk`` scaled by ``high`` fools the artifact (inf: no scale found), scaled by ``low`` not."""

    perturbation: torch.Tensor
    fooled: torch.Tensor
    iterations: torch.Tensor
    start_labels: torch.Tensor
    unshrunk: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def take(self, rows: torch.Tensor) -> ArtifactAttack:
        """The images ``rows`` only."""
        return ArtifactAttack(*(getattr(self, f.name)[rows] for f in fields(self)))

    def put(self, rows: torch.Tensor, other: ArtifactAttack) -> ArtifactAttack:
        """A copy with the images ``rows`` replaced by ``other``'s."""
        return ArtifactAttack(*(getattr(self, f.name).index_copy(0, rows, getattr(other, f.name))
                                for f in fields(self)))

    @staticmethod
    def cat(parts: list[ArtifactAttack]) -> ArtifactAttack:
        """Batches joined in order."""
        return ArtifactAttack(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(ArtifactAttack)))

    def rho(self, x: torch.Tensor) -> torch.Tensor:
        return l2_norms(self.perturbation) / l2_norms(x)


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def to_boundary(runner: Predictor, x: torch.Tensor, r: torch.Tensor, start: torch.Tensor, fooled: torch.Tensor,
                steps: int = 8, bounds: tuple[float, float] | None = None, max_scale: float = 4.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move each ``x + r`` along ``r`` onto the artifact's decision boundary (its fooling side).

    A fooling ``r`` is shrunk by bisection, first inside [0.9, 1] (DeepFool overshoots by a few per cent),
    else inside [0, 0.9]. A ``r`` that does not fool the artifact is stretched (×1.5 up to ``max_scale``)
    until it does, then bisected. Returns the new perturbations, which of them fool the artifact, and the final
    bracket of scales (``low`` does not fool, ``high`` does; inf where no scale did).
    """
    def flips(rows: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        points = x[rows] + _expand(t, x) * r[rows]
        points = points if bounds is None else points.clamp(*bounds)
        return runner.predict(points).argmax(1) != start[rows]

    fooled = fooled.clone()
    low, high = torch.zeros(len(x)), torch.ones(len(x))
    shrink = torch.nonzero(fooled).squeeze(1)
    if shrink.numel():
        inner = torch.full((len(shrink),), 0.9)
        already = flips(shrink, inner)
        high[shrink[already]] = 0.9
        low[shrink[~already]] = 0.9
    stretch = torch.nonzero(~fooled & (r.flatten(1).norm(dim=1) > 0)).squeeze(1)
    scale = 1.0
    while stretch.numel() and scale < max_scale:
        checked, scale = scale, min(scale * 1.5, max_scale)
        now = flips(stretch, torch.full((len(stretch),), scale))
        hit = stretch[now]
        low[hit], high[hit], fooled[hit] = checked, scale, True  # ``checked`` was probed and did not fool
        stretch = stretch[~now]
    low[~fooled], high[~fooled] = scale, float("inf")  # the largest scale probed did not fool
    rows = torch.nonzero(fooled).squeeze(1)
    for _ in range(steps if rows.numel() else 0):
        mid = (low[rows] + high[rows]) / 2
        now = flips(rows, mid)
        high[rows] = torch.where(now, mid, high[rows])
        low[rows] = torch.where(now, low[rows], mid)
    moved = r * _expand(torch.where(fooled, high, torch.ones(len(x))), r)
    return (moved if bounds is None else (x + moved).clamp(*bounds) - x), fooled, low, high


def artifact_deepfool(model: nn.Module, runner: Predictor, x: torch.Tensor, *, max_iter: int, num_candidates: int,
                      overshoot: float = 0.02, bounds: tuple[float, float] | None = None,
                      bisection_steps: int = 8, screen: float = 0.0) -> ArtifactAttack:
    """DeepFool on ``runner``'s artifact with gradients from ``model`` (the same weights in torch, CPU)."""
    return artifact_deepfool_budgets(model, runner, x, (max_iter,), num_candidates=num_candidates,
                                     overshoot=overshoot, bounds=bounds, bisection_steps=bisection_steps,
                                     screen=screen)[max_iter]


def artifact_deepfool_budgets(model: nn.Module, runner: Predictor, x: torch.Tensor, budgets: Iterable[int], *,
                              num_candidates: int, overshoot: float = 0.02, bounds: tuple[float, float] | None = None,
                              bisection_steps: int = 8, trace: DeepFoolTrace | None = None, screen: float = 0.0
                              ) -> dict[int, ArtifactAttack]:
    """:func:`artifact_deepfool` at several iteration budgets from one sweep (:func:`deepfool_budgets`);
    ``trace`` records the sweep's decisions (see :mod:`ddzoo.verification.replay`); ``screen``: DeepFool's."""
    sweep = deepfool_budgets(model, x, budgets, overshoot=overshoot, num_candidates=num_candidates, bounds=bounds,
                             oracle=runner.predict, trace=trace, screen=screen)
    attacks = {}
    for budget, result in sweep.items():
        r, fooled, low, high = to_boundary(runner, x, result.perturbation, result.start_labels, result.fooled,
                                           bisection_steps, bounds)
        attacks[budget] = ArtifactAttack(r, fooled, result.iterations, result.start_labels, result.perturbation,
                                         low, high)
    return attacks


class _FiniteDifferenceLogits(torch.autograd.Function):
    """Logits from a runner; the backward pass uses the Jacobian from central differences."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, runner: Runner, step: float) -> torch.Tensor:
        logits = runner.predict(x.detach())
        if x.requires_grad:
            n, dims = x.shape[0], x[0].numel()
            basis = torch.eye(dims).view(dims, *x.shape[1:]) * step
            jacobians = []
            for i in range(n):
                plus = runner.predict(x[i].detach() + basis)
                minus = runner.predict(x[i].detach() - basis)
                jacobians.append(((plus - minus) / (2 * step)).T)  # (classes, dims)
            ctx.save_for_backward(torch.stack(jacobians))
            ctx.input_shape = x.shape
        return logits

    @staticmethod
    def backward(ctx, grad_logits: torch.Tensor):
        (jacobians,) = ctx.saved_tensors
        grad_x = torch.bmm(grad_logits.unsqueeze(1), jacobians).squeeze(1).view(ctx.input_shape)
        return grad_x, None, None


class FiniteDifferenceModel(nn.Module):
    """A runner as a module whose input gradients are central differences of the artifact's logits."""

    def __init__(self, runner: Runner, step: float = 1e-2):
        super().__init__()
        self.runner, self.step = runner, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FiniteDifferenceLogits.apply(x, self.runner, self.step)


def finite_difference_deepfool(runner: Runner, x: torch.Tensor, *, max_iter: int, num_candidates: int,
                               overshoot: float = 0.02, step: float = 1e-2) -> ArtifactAttack:
    """DeepFool that sees only the artifact (2·dims queries per image and step), bisected to its boundary."""
    return artifact_deepfool(FiniteDifferenceModel(runner, step), runner, x, max_iter=max_iter,
                             num_candidates=num_candidates, overshoot=overshoot)
