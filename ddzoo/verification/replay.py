"""Replay per artifact: the checkpoint's attacks checked on an artifact with forward passes only.

The gradient work of verification depends on the checkpoint alone (:mod:`ddzoo.verification.checkpoint`). An
image stays on the checkpoint's DeepFool path when the artifact

- starts from the same label and the same top-K candidate set,
- gives the same verdict (fooled or not) at every point the checkpoint's run checked,
- and would choose the same candidate class at every step (the checkpoint's ‖w'_k‖ with the artifact's f'_k;
  optionally also with f'_l within a relative ``tolerance``).

Along such a path the artifact-in-the-loop DeepFool takes the same decisions (its step lengths differ by the
artifacts' logit differences only), so the checkpoint's DeepFool perturbation stands for it and only the line
search onto the artifact's own boundary is redone, and only where the checkpoint's final bracket (fooled at
``high``, not at ``low``; under a single crossing along the ray it fixes the bisection's result) does not hold
on the artifact. The images whose decisions leave the path are attacked with the artifact in the loop
(:func:`~ddzoo.verification.attack.artifact_deepfool_budgets`).
"""

from __future__ import annotations

import torch
from torch import nn

from ddzoo.attacks.deepfool import DeepFoolTrace, screened_candidates
from ddzoo.verification.attack import ArtifactAttack, Predictor, _expand, artifact_deepfool_budgets, to_boundary


def _predict(runner: Predictor, points: torch.Tensor, size: int) -> torch.Tensor:
    """Logits of ``points`` in chunks of ``size`` (a trace holds up to ~2 × iterations points per image)."""
    return torch.cat([runner.predict(points[i:i + size]) for i in range(0, len(points), size)])


def path_agreement(runner: Predictor, trace: DeepFoolTrace, start: torch.Tensor, n: int,
                   tolerance: float | None = None) -> torch.Tensor:
    """Per image (``n`` of them): whether the artifact takes every decision the traced run took (and, with
    ``tolerance``, every step's f'_l within it, relative). Under DeepFool's bfloat16 screen a decision is also
    which candidates get float32 gradients: the artifact's f' must not bring in one the traced run estimated only."""
    agree = torch.ones(n, dtype=torch.bool)
    if trace.checks:
        rows, points, verdicts = (torch.cat(column) for column in zip(*trace.checks, strict=True))
        same = (_predict(runner, points, n).argmax(1) != start[rows]) == verdicts
        agree[rows[~same]] = False
    if trace.steps:
        columns = zip(*trace.steps, strict=True)
        rows, points, candidates, norms, chosen, value, estimated, exact = (torch.cat(c) for c in columns)
        picked = _predict(runner, points, n).gather(1, candidates)
        diffs = picked[:, 1:] - picked[:, :1]
        distances = diffs.abs() / norms
        same = torch.ones(len(rows), dtype=torch.bool)
        if trace.screen > 0:  # the artifact's own screen: its exact set, from the same bfloat16 estimates
            _, wanted = screened_candidates(diffs, estimated, trace.screen)
            same &= ~(wanted & ~exact).any(1)
            distances = distances.masked_fill(~wanted, float("inf"))
        nearest = distances.argmin(1)
        f = diffs.gather(1, chosen[:, None]).squeeze(1)
        same &= nearest == chosen
        if tolerance is not None:
            same &= (f - value).abs() <= tolerance * value.abs() + 1e-6
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
                    bisection_steps: int, tolerance: float | None, bounds: tuple[float, float] | None = None,
                    screen: float = 0.0) -> tuple[dict[int, ArtifactAttack], torch.Tensor, dict[int, torch.Tensor]]:
    """The artifact's DeepFool results at the checkpoint's budgets.

    Where the artifact takes the checkpoint's decisions, the checkpoint's DeepFool result is the artifact's; only
    its line search onto the boundary is redone on the artifact where the bracket does not hold (forward passes).
    Where the decisions leave the path, the artifact-in-the-loop attack runs.

    Args:
        model: the gradient source (the checkpoint, for images that leave the path).
        runner: the artifact.
        x: the images.
        checkpoint: the checkpoint's results per iteration budget (its own line search included).
        trace: the checkpoint's DeepFool decisions on ``x``.
        same_start: per image, the artifact starts from the checkpoint's label and candidate set.
        tolerance: if given, a step whose f'_l differs more than this (relative) also leaves the path.

    Returns:
        the results per budget, which images were attacked in the loop, and per budget which had their line
        search redone.
    """
    budgets = sorted(checkpoint, reverse=True)
    on_path = same_start & path_agreement(runner, trace, checkpoint[budgets[0]].start_labels, len(x), tolerance)
    searched: dict[int, torch.Tensor] = {}
    results: dict[int, ArtifactAttack] = {}
    for budget in budgets:  # the largest first: a smaller budget's identical perturbations reuse its search
        attack = checkpoint[budget]
        searched[budget] = torch.zeros(len(x), dtype=torch.bool)
        rows = torch.nonzero(on_path).squeeze(1)
        off = rows[~bracket_agreement(runner, x[rows], attack.take(rows), bounds)]
        if results and off.numel():
            larger = max(results)
            same = torch.all((attack.unshrunk[off] == checkpoint[larger].unshrunk[off]).flatten(1), dim=1)
            attack = attack.put(off[same], results[larger].take(off[same]))
            searched[budget][off[same]] = True
            off = off[~same]
        if off.numel():
            # DeepFool's own verdict at its perturbation (scale 1), which the trace showed the artifact shares;
            # ``fooled`` also counts perturbations the checkpoint's line search had to stretch (``high`` > 1)
            at_deepfool = attack.fooled[off] & (attack.high[off] <= 1)
            r, fooled, low, high = to_boundary(runner, x[off], attack.unshrunk[off], attack.start_labels[off],
                                               at_deepfool, bisection_steps, bounds)
            attack = attack.put(off, ArtifactAttack(r, fooled, attack.iterations[off], attack.start_labels[off],
                                                    attack.unshrunk[off], low, high))
            searched[budget][off] = True
        results[budget] = attack
    left = torch.nonzero(~on_path).squeeze(1)
    if left.numel():
        fresh = artifact_deepfool_budgets(model, runner, x[left], budgets, num_candidates=num_candidates,
                                          overshoot=overshoot, bounds=bounds, bisection_steps=bisection_steps,
                                          screen=screen)
        results = {budget: results[budget].put(left, fresh[budget]) for budget in budgets}
    return results, ~on_path, searched
