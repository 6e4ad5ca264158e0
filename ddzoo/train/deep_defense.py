"""Deep Defense fine-tuning (Yan, Guo, Zhang, NeurIPS 2018, eq. 4-6), as specified in deep-defense.md.

    loss = mean CE(f(x), y) + (λ / n) · [ Σ_{i∈T} exp(−c·ρ_i) + Σ_{i∈F} exp(d·ρ_i) ],  ρ_i = ||r_i|| / ||x_i||

T / F: samples the current forward pass classifies correctly / wrongly. r_i is the differentiable DeepFool
perturbation: untargeted from the true label for T, targeted at the true label for F, its iterations
unrolled so gradients flow through every step and through the input gradients (double backprop).
ρ is measured in the model's normalised input space by default (the paper's mean-subtracted pixels),
so the paper's λ, c, d apply. Batch norm statistics and affine parameters are frozen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.attacks import deepfool
from ddzoo.device import pick_device
from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.eval.threat import declared_threat_models
from ddzoo.models import Classifier
from ddzoo.package import load_checkpoint
from ddzoo.train.loop import SGDRecipe, run_training

SPACES = ("normalized", "pixel")


@dataclass(frozen=True)
class DeepDefenseRecipe(SGDRecipe):
    """Hyperparameters; defaults are the reference code's (lr × 0.5 at 80 % of the epochs)."""

    epochs: int = 5
    batch_size: int = 100
    lr: float = 5e-4
    lam: float = 15.0
    c: float = 25.0
    d: float = 5.0
    max_iter: int = 5
    num_candidates: int = 10
    overshoot: float = 0.02
    space: str = "normalized"

    def validate(self) -> None:
        super().validate()
        if self.space not in SPACES:
            raise InvalidArgumentError(f"unknown space {echo(self.space)}; choose one of: {', '.join(SPACES)}")
        if self.lam < 0 or self.c < 0 or self.d < 0 or self.max_iter < 1 or self.num_candidates < 2:
            raise InvalidArgumentError("λ, c, d must be >= 0, max_iter >= 1 and num_candidates >= 2")

    def lr_at(self, step: int, total: int) -> float:
        return self.lr * (0.5 if step >= int(0.8 * total) else 1.0)


def deep_defense_regularizer(model: Classifier, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor,
                             recipe: DeepDefenseRecipe, *, full_graph: bool = False
                             ) -> tuple[torch.Tensor, dict[str, float]]:
    """``(λ/n)·[Σ_T exp(−cρ) + Σ_F exp(dρ)]`` for a batch, differentiable w.r.t. the model's weights.

    Args:
        model: the classifier being trained.
        x, y: batch in [0, 1] pixels and true labels.
        logits: ``model(x)`` of this step (decides T and F).
        recipe: λ, c, d and the DeepFool settings.
        full_graph: build the graph for every candidate (reference for tests; same value and gradient).
    """
    net, inputs = (model.net, model.normalize(x)) if recipe.space == "normalized" else (model, x)
    inputs = inputs.detach()
    correct = logits.detach().argmax(1) == y
    total = logits.new_zeros(())
    rho_sum = {"correct": 0.0, "wrong": 0.0}
    for mask, sign, scale in ((correct, -1.0, recipe.c), (~correct, 1.0, recipe.d)):
        if not mask.any():
            continue
        result = deepfool(net, inputs[mask], max_iter=recipe.max_iter, overshoot=recipe.overshoot,
                          num_candidates=recipe.num_candidates, targets=None if sign < 0 else y[mask],
                          create_graph=True, full_graph=full_graph, clean_logits=logits[mask])
        rho = result.rho(inputs[mask], eps=1e-5)
        total = total + torch.exp(sign * scale * rho).sum()
        rho_sum["correct" if sign < 0 else "wrong"] = rho.detach().sum().item()
    n = len(x)
    reg = recipe.lam * total / n
    return reg, {"rho": (rho_sum["correct"] + rho_sum["wrong"]) / n}


def deep_defense_loss(wrapped: nn.Module, model: Classifier, x: torch.Tensor, y: torch.Tensor,
                      recipe: DeepDefenseRecipe) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy plus the Deep Defense regulariser, with statistics for the progress bar."""
    logits = wrapped(x)
    ce = F.cross_entropy(logits, y)
    reg, stats = deep_defense_regularizer(model, x, y, logits, recipe) if recipe.lam > 0 else (ce.new_zeros(()), {})
    loss = ce + reg
    return loss, {"loss": loss.item(), "ce": ce.item(), "reg": reg.item(),
                  "acc": (logits.argmax(1) == y).float().mean().item(), **stats}


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with its statistics and affine parameters fixed, computed as ``x * scale + shift``.

    The same function as an eval-mode ``BatchNorm2d`` (and the same state-dict keys), but the double
    backward of Deep Defense goes through two elementwise ops instead of batch norm's generic
    backward-of-backward (a fifth of a ResNet-20 Deep Defense step on the CPU).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def freeze_batch_norm(model: nn.Module, *, as_affine: bool = True) -> nn.Module:
    """Freeze every batch-norm layer: eval mode, affine parameters not trained, and (``as_affine``) 2-d ones
    computed as :class:`FrozenBatchNorm2d` — False keeps the slower eval-mode ``BatchNorm2d`` (benchmarks)."""
    for parent in list(model.modules()) if as_affine else []:
        for name, child in parent.named_children():
            if type(child) is nn.BatchNorm2d and child.affine and child.track_running_stats:
                frozen = FrozenBatchNorm2d(child.num_features, child.eps).to(child.weight.device)
                frozen.load_state_dict(child.state_dict())
                setattr(parent, name, frozen)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for parameter in module.parameters():
                parameter.requires_grad_(False)
    return model


def finetune_deep_defense(init: Path | str, out: Path | str, recipe: DeepDefenseRecipe = DeepDefenseRecipe(), *,
                          device: str | None = None, resume: bool = False, stop_after_epochs: int | None = None,
                          train_limit: int | None = None) -> Path | None:
    """Fine-tune the reference checkpoint ``init`` with Deep Defense and write a checkpoint at ``out``.

    Args:
        init: reference checkpoint folder (recorded; it is the reference for ε_ref in ``zoo eval``).
        out: checkpoint folder to write.
        recipe: hyperparameters (paper defaults).
        device: torch device; default CUDA when available.
        resume: continue an interrupted run in ``out``.
        stop_after_epochs: stop (resumably) after this many epochs.
        train_limit: fine-tune on the first N training images only (recorded).

    Returns:
        ``out`` as a Path, or None if stopped before the last epoch.
    """
    recipe.validate()
    dev = pick_device(device)
    model, init_config = load_checkpoint(init, dev)
    freeze_batch_norm(model.train())
    settings = {**asdict(recipe), "init": str(init), "train_limit": train_limit}

    def objective(wrapped: nn.Module, m: Classifier, x: torch.Tensor, y: torch.Tensor):
        return deep_defense_loss(wrapped, m, x, y, recipe)

    threats = declared_threat_models(init_config)  # a fine-tune of a robust model claims what it claimed
    inherited = {"threat_models": [t.to_json() for t in threats]} if threats else {}
    return run_training(model, init_config["dataset"], out, objective, recipe=settings, lr_at=recipe.lr_at,
                        config={"dataset": init_config["dataset"], "recipe": {"name": "deep-defense", **settings},
                                **inherited},
                        device=dev, resume=resume, stop_after_epochs=stop_after_epochs, train_limit=train_limit)
