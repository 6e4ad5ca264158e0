"""The registry of training recipes (as timm registers models): ``zoo train --recipe NAME`` runs the entry.

Each entry turns the options of ``zoo train`` (:class:`TrainOptions`) into its own recipe settings and runs it.
A new recipe is one ``@register_recipe`` function here.

Example:
    >>> folder = train_recipe("reference", "runs/lenet-ref", TrainOptions(model="lenet", dataset="mnist", epochs=1))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ddzoo.errors import DuplicateNameError, InvalidArgumentError, UnknownNameError
from ddzoo.train.adversarial import AdversarialRecipe, train_adversarial
from ddzoo.train.deep_defense import DeepDefenseRecipe, finetune_deep_defense
from ddzoo.train.parseval import ParsevalRecipe, train_parseval
from ddzoo.train.reference import ReferenceRecipe, train_reference


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``zoo train`` can set; each recipe reads its own (see ``zoo train --help``)."""

    model: str = "lenet"
    dataset: str = "mnist"
    init: Path | None = None  # the checkpoint to fine-tune (deep-defense needs one)
    epochs: int | None = None  # None: the recipe's default (likewise batch_size and lr)
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    lam: float = 15.0
    c: float = 25.0
    d: float = 5.0
    max_iter: int = 5
    candidates: int = 10
    overshoot: float = 0.02
    space: str = "normalized"
    adv_norm: str = "linf"
    adv_eps: float = 0.3
    adv_attack: str = "pgd"
    adv_noise: float = 2.0
    guard_images: int = 0
    guard_steps: int = 10
    adv_steps: int = 7
    adv_step_size: float | None = None
    adv_weight: float = 1.0
    beta: float = 3e-4

    def common(self) -> dict:
        """The optimiser settings every recipe takes (those left None keep the recipe's default)."""
        given = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        return {"momentum": self.momentum, "weight_decay": self.weight_decay, "seed": self.seed,
                **{key: value for key, value in given.items() if value is not None}}


RecipeEntry = Callable[[Path, TrainOptions, dict], Path | None]
_RECIPES: dict[str, RecipeEntry] = {}


def register_recipe(name: str) -> Callable[[RecipeEntry], RecipeEntry]:
    """Register ``entry(out, options, run) -> checkpoint folder | None (stopped)`` as recipe ``name``."""
    def add(entry: RecipeEntry) -> RecipeEntry:
        if name in _RECIPES:
            raise DuplicateNameError(f"recipe {name!r} is already registered; pick another name")
        _RECIPES[name] = entry
        return entry
    return add


def list_recipes() -> list[str]:
    """The registered recipes, in registration order."""
    return list(_RECIPES)


def train_recipe(recipe: str, out: Path | str, options: TrainOptions = TrainOptions(), *, device: str | None = None,
          resume: bool = False, stop_after_epochs: int | None = None, train_limit: int | None = None) -> Path | None:
    """Train with the registered ``recipe`` into the checkpoint folder ``out``.

    Returns:
        the checkpoint folder, or None when ``stop_after_epochs`` stopped the run (continue with ``resume``).

    Raises:
        UnknownNameError: no such recipe (the message lists them).
    """
    if recipe not in _RECIPES:
        raise UnknownNameError("recipe", recipe, list_recipes())
    run = {"device": device, "resume": resume, "stop_after_epochs": stop_after_epochs, "train_limit": train_limit}
    return _RECIPES[recipe](Path(out), options, run)


@register_recipe("reference")
def _reference(out: Path, o: TrainOptions, run: dict) -> Path | None:
    settings = ReferenceRecipe(warmup_epochs=o.warmup_epochs, label_smoothing=o.label_smoothing, **o.common())
    return train_reference(o.model, o.dataset, out, settings, **run)


@register_recipe("deep-defense")
def _deep_defense(out: Path, o: TrainOptions, run: dict) -> Path | None:
    if o.init is None:
        raise InvalidArgumentError("--recipe deep-defense fine-tunes a reference model: pass --init CHECKPOINT")
    settings = DeepDefenseRecipe(lam=o.lam, c=o.c, d=o.d, max_iter=o.max_iter, num_candidates=o.candidates,
                                 overshoot=o.overshoot, space=o.space, **o.common())
    return finetune_deep_defense(o.init, out, settings, **run)


@register_recipe("adversarial")
def _adversarial(out: Path, o: TrainOptions, run: dict) -> Path | None:
    settings = AdversarialRecipe(norm=o.adv_norm, eps=o.adv_eps, attack=o.adv_attack, attack_steps=o.adv_steps,
                                 attack_step_size=o.adv_step_size, adv_weight=o.adv_weight, noise=o.adv_noise,
                                 guard_images=o.guard_images, guard_steps=o.guard_steps,
                                 warmup_epochs=o.warmup_epochs, label_smoothing=o.label_smoothing, **o.common())
    return train_adversarial(o.model, o.dataset, out, settings, init=o.init, **run)


@register_recipe("parseval")
def _parseval(out: Path, o: TrainOptions, run: dict) -> Path | None:
    settings = ParsevalRecipe(beta=o.beta, warmup_epochs=o.warmup_epochs, label_smoothing=o.label_smoothing,
                              **o.common())
    return train_parseval(o.model, o.dataset, out, settings, init=o.init, **run)
