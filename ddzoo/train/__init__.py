"""Training: reference models, Deep Defense fine-tuning, resumable runs (checkpoints: :mod:`ddzoo.package`); the
recipes ``zoo train`` runs are registered in :mod:`~ddzoo.train.recipes`."""

from ddzoo.train.adversarial import AdversarialRecipe, train_adversarial
from ddzoo.train.deep_defense import DeepDefenseRecipe, deep_defense_regularizer, finetune_deep_defense
from ddzoo.train.parseval import ParsevalRecipe, train_parseval
from ddzoo.train.recipes import TrainOptions, list_recipes, register_recipe, train_recipe
from ddzoo.train.reference import ReferenceRecipe, train_reference

__all__ = ["AdversarialRecipe", "DeepDefenseRecipe", "ParsevalRecipe", "ReferenceRecipe", "TrainOptions",
           "deep_defense_regularizer", "finetune_deep_defense", "list_recipes", "register_recipe", "train_adversarial",
           "train_parseval", "train_recipe", "train_reference"]
