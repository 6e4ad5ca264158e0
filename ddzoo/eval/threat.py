"""Threat models: the (norm, ε) a model is trained and judged at, and the labels robust figures carry.

A model *declares* threat models in its config (``threat_models``: ``[{"norm": "Linf", "eps": 0.0314}]``), or
by its recipe: adversarial training at a dataset's standard budget (RobustBench's ℓ∞ 8/255 and ℓ2 0.5 on
CIFAR-10) declares that budget. Every robust figure is labelled with norm, ε, attack and n
(:meth:`ThreatModel.label`: ``AutoAttack ℓ∞ 8/255, n = 1,000``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ddzoo.errors import InvalidArgumentError, echo

NORMS = {"Linf": "ℓ∞", "L2": "ℓ2"}
_NORM_ALIASES = {"linf": "Linf", "l2": "L2", "inf": "Linf", "2": "L2"}
# AutoAttack budgets ([0, 1] pixels). CIFAR-10: RobustBench's (8/255 l∞, 0.5 l2). MNIST: the l∞ 0.3 of Madry et
# al. 2018 and an l2 of 2.0, the usual pair for MNIST. Fashion-MNIST has no settled pair; we use l∞ 0.1 and l2
# 1.5, the same fraction of MNIST's budgets as LeNet's Fashion-MNIST rho2 is of its MNIST one (about half).
STANDARD_EPS = {"cifar10": {"Linf": 8 / 255, "L2": 0.5}, "mnist": {"Linf": 0.3, "L2": 2.0},
                "fashion-mnist": {"Linf": 0.1, "L2": 1.5}}


@dataclass(frozen=True)
class ThreatModel:
    """A perturbation budget: ``norm`` (``Linf`` or ``L2``) and ``eps`` in [0, 1] pixels."""

    norm: str
    eps: float

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise InvalidArgumentError(f"unknown norm {echo(self.norm)}; choose from: {', '.join(NORMS)}")
        if not (isinstance(self.eps, (int, float)) and not isinstance(self.eps, bool) and math.isfinite(self.eps)
                and self.eps > 0
                and (self.norm != "Linf" or self.eps <= 1)):
            raise InvalidArgumentError(f"a threat model's ε must be positive (at most 1 for ℓ∞: [0, 1] pixels), "
                                       f"not {echo(self.eps)}")

    @classmethod
    def parse(cls, text: str) -> ThreatModel:
        """``linf:8/255``, ``L2:0.5`` (a fraction or a decimal)."""
        norm, sep, eps = text.partition(":")
        if not sep or norm.strip().lower() not in _NORM_ALIASES:
            raise InvalidArgumentError(f"a budget is NORM:EPS such as linf:8/255 or l2:0.5, not {echo(text)}")
        try:
            value = float(Fraction(eps.strip()))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise InvalidArgumentError(f"{echo(text)}: ε must be a number or a fraction such as 8/255") from None
        return cls(_NORM_ALIASES[norm.strip().lower()], value)

    @property
    def eps_text(self) -> str:
        """``8/255`` for an ℓ∞ budget on the 8-bit grid, else the number (``0.5``)."""
        steps = self.eps * 255
        if self.norm == "Linf" and abs(steps - round(steps)) < 1e-6:
            return f"{round(steps)}/255"
        return f"{self.eps:.6g}"

    @property
    def key(self) -> str:
        """The JSON key of its figures: ``Linf 8/255``, ``L2 0.5``."""
        return f"{self.norm} {self.eps_text}"

    def label(self, attack: str = "AutoAttack", images: int | None = None) -> str:
        """``AutoAttack ℓ∞ 8/255, n = 1,000``."""
        n = "" if images is None else f", n = {images:,}"
        return f"{attack} {NORMS[self.norm]} {self.eps_text}{n}"

    def to_json(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.eps}


def figure_label(attack: str, norm: str, figure: dict) -> str:
    """The label of a robust-accuracy figure that holds its ``eps`` and ``images`` under a norm key (a
    ``--strong`` AutoAttack record): ``AutoAttack ℓ∞ 8/255, n = 500``."""
    return ThreatModel(norm, float(figure["eps"])).label(attack, int(figure["images"]))


def standard_threat_models(dataset: str) -> list[ThreatModel]:
    """The dataset's standard budgets (both norms)."""
    if dataset not in STANDARD_EPS:
        raise InvalidArgumentError(f"no standard budget for {echo(dataset)}; known: {', '.join(STANDARD_EPS)}")
    return [ThreatModel(norm, eps) for norm, eps in STANDARD_EPS[dataset].items()]


def declared_threat_models(config: dict[str, Any]) -> list[ThreatModel]:
    """The threat models a checkpoint or package declares (see the module's text); none for most models."""
    declared = config.get("threat_models")
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(t, dict) for t in declared):
            raise InvalidArgumentError("config.json: threat_models must be a list of {norm, eps}")
        return [ThreatModel(_NORM_ALIASES.get(str(t.get("norm")).lower(), str(t.get("norm"))), t.get("eps"))
                for t in declared]
    recipe = config.get("recipe") or {}
    if recipe.get("name") != "adversarial":
        return []
    norm = _NORM_ALIASES.get(str(recipe.get("norm", "")).lower())
    standard = STANDARD_EPS.get(config.get("dataset", ""), {}).get(norm or "")
    eps = recipe.get("eps")
    if standard is not None and isinstance(eps, (int, float)) and math.isclose(eps, standard, rel_tol=1e-6):
        return [ThreatModel(norm, standard)]
    return []
