"""Training: reference models and (next) Deep Defense fine-tuning; checkpoints."""

from ddzoo.train.checkpoint import load_checkpoint, read_config, save_checkpoint
from ddzoo.train.reference import ReferenceRecipe, train_reference

__all__ = ["ReferenceRecipe", "load_checkpoint", "read_config", "save_checkpoint", "train_reference"]
