"""The gradient-masking checklist (Carlini et al., "On Evaluating Adversarial Robustness", 2019, sec. 5-7).

A defence that regularises DeepFool's own perturbation could merely hide gradients from DeepFool. Five
checks over one model's evaluation, each a measured pass or fail with its numbers:

1. iterative attacks are at least as strong as single-step ones (BIM reaches 50 % accuracy at an ε no larger
   than FGS: ε_ref(BIM) ≤ ε_ref(FGS));
2. accuracy falls to about 0 as ε grows (BIM, 50 steps, ℓ∞ at 8·ε_ref; for a model that declares a threat model,
   PGD-50 at 4× its budget in its norm where that is larger, since 8·ε_ref of the reference lies inside an
   adversarially trained model's ball);
3. the query-only attack is not stronger than the white-box one (Square vs BIM at ε_ref, same images: the
   top of Square's 95 % interval reaches BIM's accuracy);
4. unbounded attacks reach 100 % success (DeepFool unconstrained, and the best-of minimum-norm attacks);
5. DeepFool does not overstate the minimal perturbation (its mean ‖r‖ against the best-of's, same images).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from ddzoo.attacks.linf import pgd
from ddzoo.eval.robustness import EvalSettings, chunks, linf_accuracy
from ddzoo.eval.strong import square_robust
from ddzoo.eval.threat import NORMS, ThreatModel
from ddzoo.models.inference import accuracy
from ddzoo.records import DEEPFOOL_ITERATIONS
from ddzoo.stats import Accuracy

LARGE_EPS_FACTOR = 8.0  # "accuracy falls to ~0": BIM at 8·ε_ref ...
LARGE_THREAT_FACTOR = 4.0  # ... or PGD at 4× the model's declared budget in its norm
LARGE_EPS_MAX_ACCURACY = 0.02
DEEPFOOL_OVER_BEST_OF_MAX = 1.5  # DeepFool's mean ‖r‖ may exceed the best-of's by at most this factor


def masking_measurements(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_ref: dict[str, float], *,
                         settings: EvalSettings, device: torch.device, square_queries: int = 1000,
                         declared: ThreatModel | None = None) -> dict:
    """The two numbers the checklist needs beyond ``zoo eval``'s: 50 steps of BIM at 8·ε_ref (ℓ∞), or of PGD at
    4× the ``declared`` threat model's budget in its norm where that is larger (ℓ2: always), and Square vs BIM at
    ε_ref on the same images (``x`` is the stronger-attack subset)."""
    large = min(1.0, LARGE_EPS_FACTOR * eps_ref["bim"])
    if declared is not None and (declared.norm == "L2" or LARGE_THREAT_FACTOR * declared.eps > large):
        large_attack = {"norm": declared.norm, "attack": "PGD", "eps": LARGE_THREAT_FACTOR * declared.eps}
        generator = torch.Generator().manual_seed(0)
        adversarial = torch.cat([pgd(model, xb, yb, large_attack["eps"], norm=declared.norm.lower(), steps=50,
                                     generator=generator) for xb, yb in chunks(settings.batch_size, "pgd-50", x, y)])
        large_attack["accuracy"] = accuracy(model, adversarial, y)
    else:
        deep = replace(settings, bim_steps=50)
        large_attack = {"norm": "Linf", "attack": "BIM", "eps": large,
                        "accuracy": linf_accuracy(model, x, y, "bim", large, settings=deep, device=device)}
    bim_at_ref = linf_accuracy(model, x, y, "bim", eps_ref["bim"], settings=settings, device=device)

    def logits(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(batch.to(device)).cpu()

    square = square_robust(logits, x, y, norm="Linf", eps=eps_ref["bim"], queries=square_queries)
    return {"images": len(x), "bim_large": {**large_attack, "steps": 50},
            "bim_at_eps_ref": {"eps": eps_ref["bim"], "accuracy": bim_at_ref},
            "square_at_eps_ref": {"eps": eps_ref["bim"], "queries": square_queries, **Accuracy.of(square).to_json()}}


def masking_checklist(record: dict) -> list[dict]:
    """The checklist over a ``zoo eval`` record holding ``strong`` (best-of) and ``masking`` measurements."""
    checks = []
    fgs_ref, bim_ref = record["eps_ref"]["fgs"], record["eps_ref"]["bim"]
    checks.append(_check("iterative at least as strong as single-step", bim_ref <= fgs_ref,
                         f"accuracy 50 % at ε={bim_ref:.4f} under BIM, ε={fgs_ref:.4f} under FGS"))
    masking, strong = record["masking"], record["strong"]
    large = masking["bim_large"]
    checks.append(_check("accuracy falls to ~0 as ε grows", large["accuracy"] <= LARGE_EPS_MAX_ACCURACY,
                         f"{large.get('attack', 'BIM')}-50 {NORMS[large.get('norm', 'Linf')]} at "
                         f"ε={large['eps']:.4f}: {100 * large['accuracy']:.1f} % "
                         f"(≤ {100 * LARGE_EPS_MAX_ACCURACY:.0f} % expected)"))
    square, white = masking["square_at_eps_ref"], masking["bim_at_eps_ref"]
    checks.append(_check("query-only attack not stronger than white-box", square["ci95"][1] >= white["accuracy"],
                         f"Square {100 * square['accuracy']:.1f} % vs BIM {100 * white['accuracy']:.1f} % at "
                         f"ε={white['eps']:.4f} (n={masking['images']})"))
    deepfool_success = record["deepfool"]["pixel"][str(max(DEEPFOOL_ITERATIONS))]["fooled"]
    best_success = strong["best_of"]["success"]
    checks.append(_check("unbounded attacks reach 100 % success", deepfool_success == 1.0 and best_success == 1.0,
                         f"DeepFool {100 * deepfool_success:.1f} %, best-of {100 * best_success:.1f} %"))
    deepfool, best = strong["min_norm"].get("deepfool"), strong["best_of"]
    if deepfool:
        over = deepfool["mean_norm"] / best["mean_norm"] if best["mean_norm"] else math.inf
        checks.append(_check("DeepFool does not overstate the minimal perturbation", over <= DEEPFOOL_OVER_BEST_OF_MAX,
                             f"mean ‖r‖ DeepFool {deepfool['mean_norm']:.4f} / best-of {best['mean_norm']:.4f} = "
                             f"{over:.2f} (≤ {DEEPFOOL_OVER_BEST_OF_MAX} expected)"))
    return checks


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"check": name, "passed": bool(passed), "detail": detail}
