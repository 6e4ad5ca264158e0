"""Print the stronger-attack tables of docs/results/across-datasets.md (issue 18) from `zoo eval --attacks ...
--autoattack --json` files: per model the minimal l2 perturbations (DeepFool, each attack, best-of), AutoAttack robust
accuracy with its Wilson interval, Deep Defense / reference ratios under DeepFool and under the best-of, and
the gradient-masking checklist.

    python scripts/strong_table.py runs/final/lenet-mnist-ref.strong.json runs/final/lenet-mnist-dd.strong.json ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _name(m: dict) -> str:
    return Path(m["checkpoint"]).name


def interval(result: dict) -> str:
    """A robust-accuracy record as ``16.2 % [13.2, 19.7]`` (its 95 % Wilson interval)."""
    low, high = result["ci95"]
    return f"{100 * result['accuracy']:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def main(paths: list[str]) -> None:
    evals = [json.loads(Path(p).read_text()) for p in paths]
    by_checkpoint = {m["checkpoint"]: m for m in evals}
    print("| model | clean | mean ‖r‖₂: DeepFool / DDN / FMN / **best-of** | ρ₂ DeepFool / best-of (same images) "
          "| DeepFool ÷ best-of | AutoAttack ℓ∞ | AutoAttack ℓ2 | ρ₂ ratio vs reference: DeepFool → best-of |")
    print("|---|---:|---|---|---:|---|---|---|")
    for m in evals:
        s = m["strong"]
        norms = s["min_norm"]
        best = s["best_of"]
        aa = s.get("autoattack", {})
        versus = "–"
        reference = by_checkpoint.get(m.get("reference", ""))
        if reference is not None and reference is not m:
            rs = reference["strong"]
            versus = (f"{norms['deepfool']['rho2'] / rs['min_norm']['deepfool']['rho2']:.2f}× → "
                      f"{best['rho2'] / rs['best_of']['rho2']:.2f}×")
        print(f"| {_name(m)} | {100 * m['clean_accuracy']:.2f} % "
              f"| {norms['deepfool']['mean_norm']:.4f} / {norms.get('ddn', {}).get('mean_norm', float('nan')):.4f} / "
              f"{norms.get('fmn', {}).get('mean_norm', float('nan')):.4f} / **{best['mean_norm']:.4f}** "
              f"| {norms['deepfool']['rho2']:.4f} / {best['rho2']:.4f} "
              f"| {norms['deepfool']['mean_norm'] / best['mean_norm']:.2f} "
              f"| {interval(aa['Linf'])} (ε {aa['Linf']['eps']:.4g}) | {interval(aa['L2'])} (ε {aa['L2']['eps']:.4g}) "
              f"| {versus} |")
    print()
    checks = [c["check"] for c in evals[0]["masking"]["checklist"]]
    print("| check | " + " | ".join(_name(m) for m in evals) + " |")
    print("|---|" + "---|" * len(evals))
    for i, check in enumerate(checks):
        cells = [("pass" if m["masking"]["checklist"][i]["passed"] else "**FAIL**") + ": "
                 + m["masking"]["checklist"][i]["detail"] for m in evals]
        print(f"| {check} | " + " | ".join(cells) + " |")
    print(f"\n(stronger attacks and checklist on the first {evals[0]['strong']['images']} test images, "
          f"{evals[0]['strong']['steps']} steps; AutoAttack: {evals[0]['strong']['autoattack']['implementation']})")


if __name__ == "__main__":
    main(sys.argv[1:])
