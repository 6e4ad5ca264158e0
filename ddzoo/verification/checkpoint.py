"""Checkpoint attacks: the gradient work of a verification, done once per batch and replayed on every artifact.

Per batch: DeepFool on the checkpoint at every iteration budget (unconstrained, one sweep) and box-constrained at
the most, each with its decisions traced and moved onto the checkpoint's own decision boundary by the same line
search the artifacts get; and the FGS / BIM adversarial examples of the ε grid. Artifacts are then checked against
these with forward passes (:mod:`ddzoo.verification.replay`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ddzoo.attacks.deepfool import DeepFoolTrace
from ddzoo.eval.robustness import linf_adversarials
from ddzoo.verification.attack import ArtifactAttack, Predictor, artifact_deepfool_budgets
from ddzoo.verification.plan import VerifySettings

BOX = (0.0, 1.0)


@dataclass
class CheckpointBatch:
    """One batch of images with everything the checkpoint's gradients gave for it."""

    x: torch.Tensor
    y: torch.Tensor
    candidates: torch.Tensor  # DeepFool's top-K candidate classes from the checkpoint's clean logits (k̂ first)
    deepfool: dict[int, ArtifactAttack]  # unconstrained, per iteration budget
    trace: DeepFoolTrace
    boxed: ArtifactAttack  # box-constrained, at the most iterations
    boxed_trace: DeepFoolTrace
    linf: dict[str, list[torch.Tensor]]  # FGS / BIM adversarial examples per ε of the grid
    deepfool_seconds: float  # the unconstrained sweep


def attack_checkpoint(model: nn.Module, oracle: Predictor, x: torch.Tensor, y: torch.Tensor,
                      eps_ref: dict[str, float], settings: VerifySettings) -> CheckpointBatch:
    """Every gradient attack of the verification on one batch: gradients from ``model`` (the checkpoint's attack
    copy), every decision from ``oracle`` (the checkpoint's runner, as the old in-the-loop attack had it)."""
    logits = oracle.predict(x)
    candidates = logits.topk(min(settings.num_candidates, logits.shape[1]), dim=1).indices
    common = {"num_candidates": settings.num_candidates, "overshoot": settings.overshoot,
              "bisection_steps": settings.bisection_steps, "screen": settings.screen}
    started = time.perf_counter()
    trace, boxed_trace = DeepFoolTrace(), DeepFoolTrace()
    deepfool = artifact_deepfool_budgets(model, oracle, x, settings.iterations, trace=trace, **common)
    seconds = time.perf_counter() - started  # the unconstrained sweep, as records have always timed it
    most = max(settings.iterations)
    boxed = artifact_deepfool_budgets(model, oracle, x, (most,), bounds=BOX, trace=boxed_trace, **common)[most]
    return CheckpointBatch(x, y, candidates, deepfool, trace, boxed, boxed_trace,
                           linf_adversarials(model, x, y, eps_ref, settings=settings), seconds)
