"""Parseval networks (Cissé, Bojanowski, Grave, Dauphin, Usunier. ICML 2017): after every SGD step each weight
matrix W is pulled towards a Parseval tight frame by the retraction

    W ← (1 + β) W − β W Wᵀ W

whose fixed points have all singular values 0 or 1, bounding each layer's Lipschitz constant. A convolution's
kernel is its (out, in·k_h·k_w) matrix scaled by √(k_h·k_w) (each input pixel meets k_h·k_w kernel taps), so
its operator norm stays near 1. Residual sums become the paper's convex combinations: an architecture with
residual blocks is trained in its convex form (``resnet20`` → ``resnet20-parseval``, the same weights), which
the checkpoint records as its architecture; LeNet and the MLP have no residual sums and stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ddzoo.errors import InvalidArgumentError
from ddzoo.models import Classifier, create_model
from ddzoo.train.loop import train_recipe
from ddzoo.train.reference import ReferenceRecipe


def _scale(module: nn.Module) -> float:
    return math.sqrt(math.prod(module.kernel_size)) if isinstance(module, nn.Conv2d) else 1.0


@torch.no_grad()
def parseval_retraction(model: nn.Module, beta: float) -> None:
    """One retraction step on every linear and convolution weight of ``model`` (in place)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            weight = module.weight
            scale = _scale(module)
            matrix = weight.reshape(weight.shape[0], -1) * scale
            matrix = (1 + beta) * matrix - beta * matrix @ (matrix.T @ matrix)
            weight.copy_((matrix / scale).reshape(weight.shape))


CONVEX_FORMS = {"resnet20": "resnet20-parseval"}  # architectures with residual sums → their convex form


def convex_form(model: Classifier, dataset: str) -> Classifier:
    """``model`` rebuilt with convex residual aggregation where its architecture sums residuals (weights kept)."""
    form = CONVEX_FORMS.get(model.arch)
    if form is None:
        return model
    convex = create_model(form, dataset)
    convex.load_state_dict(model.state_dict())
    return convex.to(next(model.parameters()).device).train(model.training)


def parseval_deviation(model: nn.Module) -> dict[str, float]:
    """Per layer, ‖M Mᵀ − I‖_F / √rows for its scaled weight matrix M (0 for a Parseval tight frame)."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            matrix = module.weight.detach().reshape(module.weight.shape[0], -1) * _scale(module)
            gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
            found[name] = (gram - torch.eye(len(gram))).norm().item() / math.sqrt(len(gram))
    return found


@dataclass(frozen=True)
class ParsevalRecipe(ReferenceRecipe):
    """Reference training plus the retraction after every step (β = 3e-4 as in the paper)."""

    beta: float = 3e-4

    def validate(self) -> None:
        super().validate()
        if not 0 < self.beta < 0.5:
            raise InvalidArgumentError(f"--beta must be in (0, 0.5), got {self.beta}")


def train_parseval(arch: str, dataset: str, out: Path | str, recipe: ParsevalRecipe = ParsevalRecipe(), *,
                   init: Path | str | None = None, device: str | None = None, resume: bool = False,
                   stop_after_epochs: int | None = None, train_limit: int | None = None) -> Path | None:
    """Train ``arch`` on ``dataset`` as a Parseval network (or fine-tune the checkpoint ``init``) into ``out``."""
    return train_recipe("parseval", arch, dataset, out, recipe, init=init, device=device, resume=resume,
                        stop_after_epochs=stop_after_epochs, train_limit=train_limit,
                        after_step=lambda m: parseval_retraction(m, recipe.beta), reshape=convex_form)

