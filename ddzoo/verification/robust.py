"""Robust accuracy per declared threat model, measured on the deployed bytes (issue 27).

For a package that declares threat models (:func:`ddzoo.eval.threat.declared_threat_models`), once per threat
model: standard AutoAttack on the checkpoint (or its stored batches, :mod:`ddzoo.eval.autoattack`); those
adversarial examples replayed on every artifact with forward passes (a transfer attack: an upper bound on the
artifact's robust accuracy, labelled so); the query-only Square attack on every runner alone at the same
budget and images; and per image the worse of the two (robust only if both failed). Each artifact's figures are paired
image by image with the checkpoint's, and the gate (:func:`robust_reasons`) fails an artifact significantly
less robust than its checkpoint.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn

from ddzoo.eval.autoattack import autoattack
from ddzoo.eval.threat import ThreatModel
from ddzoo.stats import Accuracy, PairedDrop
from ddzoo.verification.attack import Predictor
from ddzoo.verification.progress import SavedRuns

REPLAYED = "AutoAttack, replayed"  # the attack's name on an artifact: the checkpoint's adversarials
COMBINED = "AutoAttack or Square"  # robust only where both failed
SIGNIFICANCE = 0.025  # one-sided: the lower half of a two-sided 95 % test


def _correct(runner: Predictor, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([runner.predict(xb).argmax(1).cpu() == yb
                      for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True)])


def _figure(threat: ThreatModel, attack: str, robust: torch.Tensor, baseline: torch.Tensor | None, **fields
            ) -> dict:
    """A robust-accuracy figure; ``baseline``: the checkpoint's flags on the same images (for an artifact)."""
    figure = {"label": threat.label(attack, len(robust)), **Accuracy.of(robust).to_json(), **fields}
    if baseline is not None:
        figure["robust_drop"] = PairedDrop.of(baseline, robust).to_json()
    return figure


def robust_records(model: nn.Module, runners: dict[str, Predictor], x: torch.Tensor, y: torch.Tensor,
                   threats: list[ThreatModel], *, images: int, square: bool, square_queries: int,
                   batch_size: int, baseline: str, store: Path | str | None = None, trust: bool = False,
                   saved: SavedRuns | None = None) -> dict[str, dict]:
    """Per runner (``baseline`` names the checkpoint's), per threat model key: AutoAttack robust accuracy on the
    first ``images`` images (replayed on artifacts), with ``square`` Square's on the same images and the worse
    of both; an artifact's figures paired with the checkpoint's (``robust_drop``). ``saved``: each Square run
    saved as it ends, or taken from there."""
    from ddzoo.eval.strong import square_robust

    found: dict[str, dict] = {name: {} for name in runners}
    for threat in threats:
        xs, ys = x[:images], y[:images]
        attacked = autoattack(model, xs, ys, threat, store=store, trust=trust)
        for name, runner in runners.items():
            is_baseline = name == baseline
            flags = attacked.robust if is_baseline else _correct(runner, attacked.adversarials, ys, batch_size)
            figure = attacked.record("AutoAttack" if is_baseline else REPLAYED, flags)
            if not is_baseline:
                figure["robust_drop"] = PairedDrop.of(found[baseline][threat.key]["flags"], flags).to_json()
            if square:
                resisted, _ = (saved or SavedRuns()).flags(f"robust square {name} {threat.key}", len(xs), partial(
                    square_robust, runner.predict, xs, ys, norm=threat.norm, eps=threat.eps, queries=square_queries))
                reference = None if is_baseline else found[baseline][threat.key]["square_flags"]
                figure["square"] = _figure(threat, "Square", resisted, reference, queries=square_queries)
                worst = flags & resisted
                reference = None if is_baseline else found[baseline][threat.key]["worst_flags"]
                figure["combined"] = _figure(threat, COMBINED, worst, reference)
                figure.update(square_flags=resisted, worst_flags=worst)
            found[name][threat.key] = {**figure, "flags": flags}
    return {name: {key: {k: v for k, v in figure.items() if not k.endswith("flags")}
                   for key, figure in figures.items()} for name, figures in found.items()}


def robust_reasons(robust: dict[str, dict] | None, max_drop: float) -> list[str]:
    """The gate's reasons against an artifact's ``robust`` field: a robust accuracy (AutoAttack replayed, Square,
    or the worse of both) more than ``max_drop`` below the checkpoint's and significantly below it (exact
    one-sided McNemar test on the images where the two differ, p < 0.025)."""
    reasons = []
    for figure in (robust or {}).values():
        for measured in (figure, figure.get("square") or {}, figure.get("combined") or {}):
            if not measured.get("robust_drop"):
                continue
            paired = PairedDrop.from_json(measured["robust_drop"])
            p = paired.p_worse()
            if paired.drop > max_drop + 1e-9 and p < SIGNIFICANCE:
                reasons.append(f"{measured['label']}: robust accuracy {100 * paired.drop:.1f} pt below the "
                               f"checkpoint's ({paired.lost} images lost, {paired.gained} gained; one-sided exact "
                               f"McNemar p = {p:.2g} < {SIGNIFICANCE})")
    return reasons
