"""Replay per artifact: the checkpoint's attacks checked on an artifact with forward passes only.

The gradient work of verification depends on the checkpoint alone (:mod:`ddzoo.verification.checkpoint`). An
image stays on the checkpoint's DeepFool path when the artifact

- starts from the same label and the same top-K candidate set,
- gives the same verdict (fooled or not) at every point the checkpoint's run checked,
- would choose the same candidate class at every step (the checkpoint's ‖w'_k‖ with the artifact's f'_k), with
  its f'_l within ``tolerance`` (relative) of the checkpoint's, so every step's length agrees to that tolerance,
- and agrees on the final bracket of the line search (fooled at ``high``, not at ``low``), which under a single
  crossing along the ray fixes the bisection's result.

Along such a path the artifact-in-the-loop DeepFool takes the same decisions, so its result is the checkpoint's.
Only the images whose decisions leave the path are attacked with the artifact in the loop
(:func:`~ddzoo.verification.attack.artifact_deepfool_budgets`).
"""

from __future__ import annotations

import torch
from torch import nn

from ddzoo.attacks.deepfool import DeepFoolTrace
from ddzoo.verification.attack import ArtifactAttack, Predictor, artifact_deepfool_budgets


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def path_agreement(runner: Predictor, trace: DeepFoolTrace, start: torch.Tensor, n: int, tolerance: float
                   ) -> torch.Tensor:
    """Per image (``n`` of them): whether the artifact takes every decision the traced run took."""
    agree = torch.ones(n, dtype=torch.bool)
    if trace.checks:
        rows, points, verdicts = (torch.cat(column) for column in zip(*trace.checks, strict=True))
        same = (runner.predict(points).argmax(1) != start[rows]) == verdicts
        agree[rows[~same]] = False
    if trace.steps:
        columns = zip(*trace.steps, strict=True)
        rows, points, candidates, norms, chosen, value = (torch.cat(column) for column in columns)
        picked = runner.predict(points).gather(1, candidates)
        diffs = picked[:, 1:] - picked[:, :1]
        nearest = (diffs.abs() / norms).argmin(1)
        f = diffs.gather(1, chosen[:, None]).squeeze(1)
        same = (nearest == chosen) & ((f - value).abs() <= tolerance * value.abs() + 1e-6)
        agree[rows[~same]] = False
    return agree


def bracket_agreement(runner: Predictor, x: torch.Tensor, attack: ArtifactAttack,
                      bounds: tuple[float, float] | None) -> torch.Tensor:
    """Per image: the artifact is fooled at the line search's ``high`` end and not at its ``low`` end (where
    those are points other than x itself, whose label :func:`replay_deepfool` checks)."""
    def flips(rows: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        points = x[rows] + _expand(scale[rows], x) * attack.unshrunk[rows]
        points = points if bounds is None else points.clamp(*bounds)
        return runner.predict(points).argmax(1) != attack.start_labels[rows]

    agree = torch.ones(len(x), dtype=torch.bool)
    moved = attack.unshrunk.flatten(1).norm(dim=1) > 0
    high = torch.nonzero(torch.isfinite(attack.high) & moved).squeeze(1)
    if high.numel():
        agree[high[~flips(high, attack.high)]] = False
    low = torch.nonzero((attack.low > 0) & moved).squeeze(1)
    if low.numel():
        agree[low[flips(low, attack.low)]] = False
    return agree


def replay_deepfool(model: nn.Module, runner: Predictor, x: torch.Tensor, checkpoint: dict[int, ArtifactAttack],
                    trace: DeepFoolTrace, same_start: torch.Tensor, *, num_candidates: int, overshoot: float,
                    bisection_steps: int, tolerance: float, bounds: tuple[float, float] | None = None
                    ) -> tuple[dict[int, ArtifactAttack], torch.Tensor]:
    """The artifact's DeepFool results at the checkpoint's budgets: the checkpoint's where the artifact stays on
    its path, the artifact-in-the-loop attack's elsewhere. Also returns which images left the path.

    Args:
        model: the gradient source (the checkpoint, for images that leave the path).
        runner: the artifact.
        x: the images.
        checkpoint: the checkpoint's results per iteration budget (its own line search included).
        trace: the checkpoint's DeepFool decisions on ``x``.
        same_start: per image, the artifact starts from the checkpoint's label and candidate set.
        tolerance: largest relative difference of a step's f'_l.
    """
    budgets = sorted(checkpoint)
    on_path = same_start & path_agreement(runner, trace, checkpoint[budgets[0]].start_labels, len(x), tolerance)
    for budget in budgets:
        rows = torch.nonzero(on_path).squeeze(1)
        on_path[rows[~bracket_agreement(runner, x[rows], checkpoint[budget].take(rows), bounds)]] = False
    left = torch.nonzero(~on_path).squeeze(1)
    if not left.numel():
        return dict(checkpoint), ~on_path
    fresh = artifact_deepfool_budgets(model, runner, x[left], budgets, num_candidates=num_candidates,
                                      overshoot=overshoot, bounds=bounds, bisection_steps=bisection_steps)
    return {budget: checkpoint[budget].put(left, fresh[budget]) for budget in budgets}, ~on_path
