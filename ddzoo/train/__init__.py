"""Training: reference models, Deep Defense fine-tuning, resumable checkpoints."""

from ddzoo.train.checkpoint import load_checkpoint, read_config, save_checkpoint
from ddzoo.train.deep_defense import DeepDefenseRecipe, deep_defense_regularizer, finetune_deep_defense
from ddzoo.train.reference import ReferenceRecipe, train_reference

__all__ = ["DeepDefenseRecipe", "ReferenceRecipe", "deep_defense_regularizer", "finetune_deep_defense",
           "load_checkpoint", "read_config", "save_checkpoint", "train_reference"]
