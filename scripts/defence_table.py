"""Print the defences-side-by-side table of docs/results/ (issue 19) from `zoo eval --attacks deepfool,fmn,ddn
--autoattack --json` files of one dataset's models (reference first): clean accuracy, DeepFool ρ₂ on the whole
test set (and its ratio to the reference's), box-constrained ρ₂, FGS/BIM accuracy at the reference's ε_ref,
best-of ρ₂ and AutoAttack on the first images, the gradient-masking checklist, and the training seconds the
checkpoint records (a fine-tune's own, without its reference's).

    python scripts/defence_table.py runs/final/lenet-fashion-mnist-{ref,dd,at,parseval}.strong.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from strong_table import interval  # scripts/ is on sys.path when this runs as a script


def row(m: dict, reference: dict) -> list[str]:
    deepfool, strong = m["deepfool"]["pixel"]["50"], m["strong"]
    best = strong["best_of"]["rho2"]
    aa = {**strong.get("autoattack", {}),  # zoo eval before per-threat-model figures, then its "robust" figures
          **{figure["norm"]: figure for figure in (m.get("robust") or {}).values()}}
    config = json.loads((Path(m["checkpoint"]) / "config.json").read_text())
    masking = m.get("masking", {}).get("checklist", [])
    return [Path(m["checkpoint"]).name, m["recipe"],
            f"{100 * m['clean_accuracy']:.2f} %",
            f"{deepfool['rho2']:.4f} ({deepfool['rho2'] / reference['deepfool']['pixel']['50']['rho2']:.2f}×)",
            f"{m['deepfool']['box_constrained']['rho2']:.4f}",
            f"{100 * m['fgs']['accuracy'][-1]:.1f} / {100 * m['bim']['accuracy'][-1]:.1f} %",
            f"{best:.4f} ({best / reference['strong']['best_of']['rho2']:.2f}×)",
            *(f"{interval(aa[norm])} (ε {aa[norm]['eps']:g})" if norm in aa else "–" for norm in ("Linf", "L2")),
            "pass" if masking and all(c["passed"] for c in masking) else "FAIL" if masking else "–",
            f"{config['metrics']['train_seconds']:,.0f}"]


def main(paths: list[str]) -> None:
    evals = [json.loads(Path(p).read_text()) for p in paths]
    reference = evals[0]
    head = ["model", "defence", "clean", "ρ₂ DeepFool (× ref)", "ρ₂ box-constrained", "FGS / BIM at ε_ref",
            f"ρ₂ best-of, {reference['strong']['images']} images (× ref)", "AutoAttack ℓ∞", "AutoAttack ℓ2",
            "masking checklist", "training s"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for m in evals:
        print("| " + " | ".join(row(m, reference)) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
