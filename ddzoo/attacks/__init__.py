"""Adversarial attacks: batched differentiable DeepFool (l2), FGS / BIM / N-FGSM (l∞) and PGD (l∞, l2)."""

from ddzoo.attacks.deepfool import DeepFoolResult, deepfool
from ddzoo.attacks.linf import bim, fgs, noisy_fgs, pgd
from ddzoo.attacks.prepare import attack_copy

__all__ = ["DeepFoolResult", "attack_copy", "bim", "deepfool", "fgs", "noisy_fgs", "pgd"]
