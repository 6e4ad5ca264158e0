"""The parts of a record measured per runner beside DeepFool: the finite-difference cross-check, Square on the
artifact alone, and the checkpoint's stronger-attack record."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ddzoo.runtime import Runner
from ddzoo.stats import Accuracy
from ddzoo.verification.attack import Predictor, artifact_deepfool, finite_difference_deepfool
from ddzoo.verification.plan import VerifySettings
from ddzoo.verification.progress import SavedRuns


def crosscheck_record(runner: Runner, x: torch.Tensor, settings: VerifySettings, model: torch.nn.Module) -> dict:
    """ρ₂ from finite-difference DeepFool (the artifact alone) vs the gradient-assisted attack, same images."""
    sample = x[: settings.crosscheck_images]
    most = settings.crosscheck_iterations
    t0 = time.perf_counter()
    blind = finite_difference_deepfool(runner, sample, max_iter=most, num_candidates=settings.num_candidates,
                                       overshoot=settings.overshoot, step=settings.crosscheck_step)
    seconds = time.perf_counter() - t0
    assisted = artifact_deepfool(model, runner, sample, max_iter=most, num_candidates=settings.num_candidates,
                                 overshoot=settings.overshoot, bisection_steps=settings.bisection_steps)
    rho_blind, rho_assisted = blind.rho(sample).mean().item(), assisted.rho(sample).mean().item()
    return {"images": len(sample), "max_iter": most,
            "method": f"finite-difference DeepFool (central, step {settings.crosscheck_step})",
            "rho2_finite_difference": rho_blind, "rho2_gradient_assisted": rho_assisted,
            "relative_difference": abs(rho_blind - rho_assisted) / max(rho_assisted, 1e-12),
            "fooled_finite_difference": blind.fooled.float().mean().item(), "seconds": seconds}


def square_record(runner: Predictor, x: torch.Tensor, y: torch.Tensor, eps_ref: dict, settings: VerifySettings,
                  name: str = "", saved: SavedRuns | None = None) -> tuple[dict, torch.Tensor]:
    """Robust accuracy of the artifact itself under the query-only Square attack (its logits alone, so it works
    on quantised artifacts where gradients and finite differences see nothing) at the l∞ ε_ref; also the
    per-image robust flags (for the paired comparison with the checkpoint). ``saved``: the run of the runner
    ``name`` saved as it ends, or taken from there."""
    from ddzoo.eval.strong import square_robust

    xs, ys = x[:settings.square_images], y[:settings.square_images]
    robust, seconds = (saved or SavedRuns()).flags(f"square {name}", len(xs), lambda: square_robust(
        runner.predict, xs, ys, norm="Linf", eps=float(eps_ref["fgs"]), queries=settings.square_queries))
    return {"eps": float(eps_ref["fgs"]), "norm": "Linf", "seconds": seconds,
            "method": "Square attack (torchattacks 3.5.1), the artifact's own logits only",
            **Accuracy.of(robust).to_json(), "queries": settings.square_queries}, robust


def strong_checkpoint_record(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: str,
                             settings: VerifySettings, previous: dict | None, sha256: str,
                             store: Path | str | None = None) -> dict | None:
    """The checkpoint's stronger-attack record (minimum-norm best-of and AutoAttack at the dataset's standard
    budgets) on the first ``settings.strong_images`` images; without them, the one measured before on the same
    weights is kept (it is the checkpoint's, and costs minutes to redo). AutoAttack's batches go to ``store``
    (:mod:`ddzoo.eval.autoattack`), shared with the threat-model figures."""
    if settings.strong_images:
        from ddzoo.eval.strong import strong_record

        n = settings.strong_images
        return strong_record(model, x[:n], y[:n], dataset, autoattack=True, store=store)
    if previous and previous.get("sha256") == sha256:
        return previous.get("strong")
    return None
