"""Parity of an artifact with its checkpoint on real test images: logit errors and top-1 agreement."""

from __future__ import annotations

import torch

from ddzoo.runtime import Runner


def parity_record(reference: Runner, artifact: Runner, x: torch.Tensor, y: torch.Tensor, dataset: str) -> dict:
    """Max and mean absolute logit error of ``artifact`` against ``reference`` and their top-1 agreement."""
    expected, actual = reference.predict(x), artifact.predict(x)
    error = (actual - expected).abs()
    return {"dataset": dataset, "split": "test", "images": len(x), "against": reference.backend,
            "max_abs_logit_error": error.max().item(), "mean_abs_logit_error": error.mean().item(),
            "top1_agreement": (actual.argmax(1) == expected.argmax(1)).float().mean().item(),
            "accuracy": (actual.argmax(1) == y).float().mean().item(),
            "reference_accuracy": (expected.argmax(1) == y).float().mean().item()}
