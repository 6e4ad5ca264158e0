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
    """The options of ``zoo train``; each recipe reads its own, and one left None keeps the recipe's default."""

    model: str = "lenet"
    dataset: str = "mnist"
    init: Path | None = None  # the checkpoint to fine-tune (deep-defense needs one)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    seed: int | None = None
    warmup_epochs: float | None = None
    label_smoothing: float | None = None
    lam: float | None = None
    c: float | None = None
    d: float | None = None
    max_iter: int | None = None
    candidates: int | None = None
    overshoot: float | None = None
    space: str | None = None
    adv_norm: str | None = None
    adv_eps: float | None = None
    adv_attack: str | None = None
    adv_noise: float | None = None
    guard_images: int | None = None
    guard_steps: int | None = None
    adv_steps: int | None = None
    adv_step_size: float | None = None
    adv_weight: float | None = None
    beta: float | None = None

    def settings(self, *names: str, **renamed: str) -> dict:
        """Recipe settings from the options given: ``names`` as they are, ``renamed`` as field=option, and the
        optimiser's (epochs, batch size, lr, momentum, weight decay, seed) always."""
        optimiser = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "seed")
        fields = {**{name: name for name in (*optimiser, *names)}, **renamed}
        return {field: getattr(self, option) for field, option in fields.items() if getattr(self, option) is not None}


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
    settings = ReferenceRecipe(**o.settings("warmup_epochs", "label_smoothing"))
    return train_reference(o.model, o.dataset, out, settings, **run)


@register_recipe("deep-defense")
def _deep_defense(out: Path, o: TrainOptions, run: dict) -> Path | None:
    if o.init is None:
        raise InvalidArgumentError("--recipe deep-defense fine-tunes a reference model: pass --init CHECKPOINT")
    settings = DeepDefenseRecipe(**o.settings("lam", "c", "d", "max_iter", "overshoot", "space",
                                              num_candidates="candidates"))
    return finetune_deep_defense(o.init, out, settings, **run)


@register_recipe("adversarial")
def _adversarial(out: Path, o: TrainOptions, run: dict) -> Path | None:
    settings = AdversarialRecipe(**o.settings("adv_weight", "guard_images", "guard_steps", "warmup_epochs",
                                              "label_smoothing", norm="adv_norm", eps="adv_eps", attack="adv_attack",
                                              attack_steps="adv_steps", attack_step_size="adv_step_size",
                                              noise="adv_noise"))
    return train_adversarial(o.model, o.dataset, out, settings, init=o.init, **run)


@register_recipe("parseval")
def _parseval(out: Path, o: TrainOptions, run: dict) -> Path | None:
    settings = ParsevalRecipe(**o.settings("beta", "warmup_epochs", "label_smoothing"))
    return train_parseval(o.model, o.dataset, out, settings, init=o.init, **run)
