"""Adversarial training (Madry et al. 2018): minimise the loss on PGD examples from the ε-ball (l∞ or l2),
on FGS examples (Goodfellow et al. 2015, the Deep Defense paper's baseline) or on N-FGSM examples (de Jorge et
al. 2022: fast single-step training at standard budgets), from scratch or fine-tuning a reference. Same schedule,
checkpoints, resume and DDP as reference training.

Guard against catastrophic overfitting (Wong et al. 2020): with ``guard_images`` > 0 and held-out images
(``train_limit``), PGD accuracy on the first ``guard_images`` of them is measured after every epoch and the
checkpoint keeps the epoch where it was highest.

    loss = (1 − w) · CE(f(x), y) + w · CE(f(x_adv), y),   w = 1 for Madry's objective, 0.5 for Goodfellow's
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.attacks import attack_copy, fgs, noisy_fgs, pgd
from ddzoo.data import Split
from ddzoo.errors import InvalidArgumentError
from ddzoo.models import Classifier
from ddzoo.train.loop import train_recipe
from ddzoo.train.reference import ReferenceRecipe

NORMS = ("linf", "l2")
ATTACKS = ("pgd", "fgs", "nfgsm")
GUARD_SEED = 1234  # the guard's PGD random starts: the same every epoch


@dataclass(frozen=True)
class AdversarialRecipe(ReferenceRecipe):
    """Reference training's schedule plus the attack that makes the training examples ([0, 1] pixels)."""

    norm: str = "linf"
    eps: float = 0.3
    attack: str = "pgd"
    attack_steps: int = 7
    attack_step_size: float | None = None  # default 2.5·eps/steps
    adv_weight: float = 1.0
    noise: float = 2.0  # N-FGSM: the uniform noise's half-width, in units of eps
    guard_images: int = 0  # held-out images attacked (PGD) after every epoch; > 0 keeps the best epoch
    guard_steps: int = 10

    def validate(self) -> None:
        super().validate()
        if self.norm not in NORMS or self.attack not in ATTACKS:
            raise InvalidArgumentError(f"--adv-norm must be one of {NORMS} and --adv-attack one of {ATTACKS}")
        if self.eps < 0 or self.attack_steps < 1 or not 0 <= self.adv_weight <= 1:
            raise InvalidArgumentError("--adv-eps must be >= 0, --adv-steps >= 1 and --adv-weight in [0, 1]")
        if self.attack in ("fgs", "nfgsm") and self.norm != "linf":
            raise InvalidArgumentError(f"--adv-attack {self.attack} is an l-inf attack; use --adv-norm linf")
        if self.noise < 0 or self.guard_images < 0 or self.guard_steps < 1:
            raise InvalidArgumentError("--adv-noise and --guard-images must be >= 0 and --guard-steps >= 1")

    def adversarial(self, model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training examples from ``model`` in eval mode (batch-norm statistics untouched by the attack). The
        random start is seeded by the batch itself, so a resumed run draws the same starts."""
        flags = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            if self.attack == "fgs":
                return fgs(model, x, y, self.eps)
            seed = hash((self.seed, int(y.sum()), float(x.sum()))) & 0x7FFF_FFFF
            if self.attack == "nfgsm":
                return noisy_fgs(model, x, y, self.eps, noise=self.noise, step_size=self.attack_step_size,
                                 generator=torch.Generator().manual_seed(seed))
            return pgd(model, x, y, self.eps, norm=self.norm, steps=self.attack_steps,
                       step_size=self.attack_step_size, generator=torch.Generator().manual_seed(seed))
        finally:
            for module, training in flags:
                module.training = training

    def objective(self, wrapped: nn.Module, model: Classifier, x: torch.Tensor, y: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, float]]:
        adversarial = self.adversarial(model, x, y)
        logits = wrapped(adversarial)
        loss = self.adv_weight * F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.adv_weight < 1:
            loss = loss + (1 - self.adv_weight) * F.cross_entropy(wrapped(x), y, label_smoothing=self.label_smoothing)
        return loss, {"loss": loss.item(), "adv_acc": (logits.argmax(1) == y).float().mean().item()}


    def guard(self, model: Classifier, holdout: Split, device: torch.device) -> float | None:
        """PGD accuracy (``guard_steps`` steps, random start) at the training ε and norm on the first
        ``guard_images`` held-out images; None when the guard is off."""
        if not self.guard_images:
            return None
        frozen = attack_copy(model)
        generator = torch.Generator().manual_seed(GUARD_SEED)
        correct = 0
        x_all, y_all = holdout.tensors(limit=self.guard_images)
        for begin in range(0, len(y_all), 500):
            x, y = x_all[begin:begin + 500].to(device), y_all[begin:begin + 500].to(device)
            adv = pgd(frozen, x, y, self.eps, norm=self.norm, steps=self.guard_steps, generator=generator)
            with torch.no_grad():
                correct += int((frozen(adv).argmax(1) == y).sum())
        return round(correct / len(y_all), 4)


def train_adversarial(arch: str, dataset: str, out: Path | str, recipe: AdversarialRecipe = AdversarialRecipe(), *,
                      init: Path | str | None = None, device: str | None = None, resume: bool = False,
                      stop_after_epochs: int | None = None, train_limit: int | None = None) -> Path | None:
    """Adversarially train ``arch`` on ``dataset`` (or fine-tune the checkpoint ``init``) into ``out``.

    Returns:
        ``out`` as a Path, or None if stopped before the last epoch.
    """
    return train_recipe("adversarial", arch, dataset, out, recipe, init=init, device=device, resume=resume,
                        stop_after_epochs=stop_after_epochs, train_limit=train_limit,
                        guard=recipe.guard if recipe.guard_images else None)
