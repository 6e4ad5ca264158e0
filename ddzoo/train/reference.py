"""Reference (vanilla) training: cross-entropy, SGD with momentum, linear warm-up then cosine decay.

The reference model is what Deep Defense fine-tunes and what ε_ref is measured on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.device import pick_device
from ddzoo.errors import InvalidArgumentError
from ddzoo.models import Classifier, create_model
from ddzoo.train.loop import SGDRecipe, run_training


@dataclass(frozen=True)
class ReferenceRecipe(SGDRecipe):
    """Hyperparameters of reference training.

    The learning rate rises linearly from 0 over ``warmup_epochs`` (Goyal et al. 2017), then follows a cosine
    decay to 0 (Loshchilov & Hutter 2017). ``label_smoothing`` is passed to the cross-entropy (0: none).
    """

    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.warmup_epochs < self.epochs or not 0 <= self.label_smoothing < 1:
            raise InvalidArgumentError("--warmup-epochs must be in [0, epochs) and --label-smoothing in [0, 1)")

    def lr_at(self, step: int, total: int) -> float:
        warmup = total * self.warmup_epochs / self.epochs
        if step < warmup:
            return self.lr * (step + 1) / warmup
        return self.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    def objective(self, wrapped: nn.Module, model: Classifier, x: torch.Tensor, y: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy (with the recipe's label smoothing) and the batch's accuracy."""
        logits = wrapped(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        return loss, {"loss": loss.item(), "acc": (logits.argmax(1) == y).float().mean().item()}


def train_reference(arch: str, dataset: str, out: Path | str, recipe: ReferenceRecipe = ReferenceRecipe(), *,
                    device: str | None = None, resume: bool = False, stop_after_epochs: int | None = None,
                    train_limit: int | None = None) -> Path | None:
    """Train ``arch`` on ``dataset`` from scratch and write a checkpoint folder at ``out``.

    Args:
        arch: registered architecture (``lenet``, ``mlp``, ``convnet``, ``resnet20``).
        dataset: ``mnist``, ``fashion-mnist`` or ``cifar10``.
        out: checkpoint folder to write.
        recipe: hyperparameters.
        device: torch device; default CUDA when available.
        resume: continue an interrupted run in ``out``.
        stop_after_epochs: stop (resumably) after this many epochs.
        train_limit: train on the first N training images only (smoke runs; recorded).

    Returns:
        ``out`` as a Path, or None if stopped before the last epoch.
    """
    recipe.validate()
    dev = pick_device(device)
    model = create_model(arch, dataset, seed=recipe.seed).to(dev).train()
    settings = {**asdict(recipe), "train_limit": train_limit}
    return run_training(model, dataset, out, recipe.objective, recipe=settings, lr_at=recipe.lr_at,
                        config={"dataset": dataset, "recipe": {"name": "reference", **settings}}, device=dev,
                        resume=resume, stop_after_epochs=stop_after_epochs, train_limit=train_limit)
