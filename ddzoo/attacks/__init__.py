"""Adversarial attacks: batched differentiable DeepFool (l2) and FGS / BIM (l∞)."""

from ddzoo.attacks.deepfool import DeepFoolResult, deepfool
from ddzoo.attacks.linf import bim, fgs
from ddzoo.attacks.prepare import attack_copy

__all__ = ["DeepFoolResult", "attack_copy", "bim", "deepfool", "fgs"]
