"""Training: reference models, Deep Defense fine-tuning, resumable runs (checkpoints: :mod:`ddzoo.package`)."""

from ddzoo.train.adversarial import AdversarialRecipe, train_adversarial
from ddzoo.train.deep_defense import DeepDefenseRecipe, deep_defense_regularizer, finetune_deep_defense
from ddzoo.train.parseval import ParsevalRecipe, train_parseval
from ddzoo.train.reference import ReferenceRecipe, train_reference

__all__ = ["AdversarialRecipe", "DeepDefenseRecipe", "ParsevalRecipe", "ReferenceRecipe", "deep_defense_regularizer",
           "finetune_deep_defense", "train_adversarial", "train_parseval", "train_reference"]
