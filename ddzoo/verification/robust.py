"""Robust accuracy per declared threat model, measured on the deployed bytes (issue 27).

For a package that declares threat models (:func:`ddzoo.eval.threat.declared_threat_models`), once per threat
model: AutoAttack on the checkpoint (or its stored adversarials, :mod:`ddzoo.eval.autoattack`), those
adversarials replayed on every artifact with forward passes, and the query-only Square attack run on every
artifact alone at the same budget; each artifact's figures are paired image by image with the checkpoint's
(:class:`~ddzoo.stats.PairedDrop`), and the gate fails an artifact significantly less robust than its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ddzoo.eval.autoattack import IMPLEMENTATION, autoattack
from ddzoo.eval.threat import ThreatModel
from ddzoo.stats import Accuracy, PairedDrop
from ddzoo.verification.attack import Predictor

REPLAYED = "the checkpoint's AutoAttack adversarials replayed on the artifact"
ON_CHECKPOINT = "AutoAttack on the checkpoint"
SQUARE = "Square attack (torchattacks 3.5.1), the runner's own logits only"


def _correct(runner: Predictor, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([runner.predict(xb).argmax(1).cpu() == yb
                      for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True)])


def robust_records(model: nn.Module, runners: dict[str, Predictor], x: torch.Tensor, y: torch.Tensor,
                   threats: list[ThreatModel], *, images: int, square_images: int, square_queries: int,
                   batch_size: int, store: Path | str | None = None, baseline: str) -> dict[str, dict]:
    """Per runner (``baseline`` names the checkpoint's), per threat model key: AutoAttack robust accuracy on the
    first ``images`` images (replayed on artifacts) and Square's on the first ``square_images`` (0: none),
    artifacts paired with the checkpoint (``robust_drop``)."""
    from ddzoo.eval.strong import square_robust

    found: dict[str, dict] = {name: {} for name in runners}
    for threat in threats:
        xs, ys = x[:images], y[:images]
        attacked = autoattack(model, xs, ys, threat, store=store)
        square_x, square_y = x[:square_images], y[:square_images]
        robust: dict[str, torch.Tensor] = {}
        square: dict[str, torch.Tensor] = {}
        for name, runner in runners.items():
            robust[name] = attacked.robust if name == baseline else _correct(runner, attacked.adversarials, ys,
                                                                             batch_size)
            record = {**threat.to_json(), "attack": "AutoAttack", "implementation": IMPLEMENTATION,
                      "method": ON_CHECKPOINT if name == baseline else REPLAYED,
                      "label": threat.label("AutoAttack", len(ys)), **Accuracy.of(robust[name]).to_json()}
            if name != baseline:
                record["robust_drop"] = PairedDrop.of(robust[baseline], robust[name]).to_json()
            if square_images:
                square[name] = square_robust(runner.predict, square_x, square_y, norm=threat.norm, eps=threat.eps,
                                             queries=square_queries)
                record["square"] = {"label": threat.label("Square", len(square_y)), "method": SQUARE,
                                    "queries": square_queries, **Accuracy.of(square[name]).to_json()}
                if name != baseline:
                    record["square"]["robust_drop"] = PairedDrop.of(square[baseline], square[name]).to_json()
            found[name][threat.key] = record
    return found


def robust_reasons(robust: dict[str, dict] | None, max_drop: float) -> list[str]:
    """The gate's reasons against an artifact's ``robust`` field: a robust accuracy (AutoAttack replayed, or
    Square) significantly (95 %) more than ``max_drop`` below the checkpoint's, paired image by image."""
    reasons = []
    for figure in (robust or {}).values():
        for measured in (figure, figure.get("square") or {}):
            drop = measured.get("robust_drop")
            if drop and PairedDrop.from_json(drop).ci95[0] > max_drop + 1e-9:
                paired = PairedDrop.from_json(drop)
                reasons.append(f"{measured['label']}: robust accuracy {100 * paired.drop:.1f} pt below the "
                               f"checkpoint's (at least {100 * paired.ci95[0]:.1f} pt at 95 %) > "
                               f"{100 * max_drop:.1f} pt")
    return reasons
