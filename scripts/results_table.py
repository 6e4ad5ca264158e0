"""Print the markdown table of docs/results/mnist.md from the `zoo eval --json` files that
scripts/mnist_results.sh writes next to each checkpoint.

    python scripts/results_table.py runs/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    m = json.loads(path.read_text())
    config = json.loads((Path(m["checkpoint"]) / "config.json").read_text())
    df = m["deepfool"]
    fgs = " / ".join(f"{a:.3f}" for a in m["fgs"]["accuracy"])
    bim = " / ".join(f"{a:.3f}" for a in m["bim"]["accuracy"])
    box = df["box_constrained"]
    recipe, versus = m["recipe"], "–"
    if recipe == "deep-defense":
        recipe += f" (c = {config['recipe']['c']:g}, K = {config['recipe']['num_candidates']})"
        reference = Path(f"{config['recipe']['init']}.eval.json")
        if reference.is_file():
            ref = json.loads(reference.read_text())
            ratio = df["normalized"]["50"]["rho2"] / ref["deepfool"]["normalized"]["50"]["rho2"]
            versus = f"{ratio:.2f}× / {(m['clean_accuracy'] - ref['clean_accuracy']) * 100:+.2f} pt"
    return (f"| {m['arch']} | {m['dataset']} | {recipe} | {m['clean_accuracy'] * 100:.2f} % "
            f"| {df['pixel']['5']['rho2']:.4f} | {df['pixel']['50']['rho2']:.4f} "
            f"| {df['normalized']['5']['rho2']:.4f} | {df['normalized']['50']['rho2']:.4f} "
            f"| {box['rho2_fooled']:.4f} ({box['fooled'] * 100:.1f} %) | {fgs} | {bim} "
            f"| {versus} | {config['metrics']['train_seconds']:.0f} s |")


def main(folder: str) -> None:
    print("| model | dataset | recipe | clean acc. | ρ₂ pixel 5 it | ρ₂ pixel 50 it | ρ₂ norm. 5 it "
          "| ρ₂ norm. 50 it | box ρ₂ (fooled) | FGS acc. 0.2/0.5/1.0·ε_ref | BIM acc. 0.2/0.5/1.0·ε_ref "
          "| ρ₂ / Δ acc. vs reference | train time |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for path in sorted(Path(folder).glob("*.eval.json")):
        print(row(path))
    for path in sorted(Path(folder).glob("*-ref.eval.json")):
        m = json.loads(path.read_text())
        print(f"\nε_ref of {m['arch']}/{m['dataset']}: FGS {m['eps_ref']['fgs']:.4f}, BIM {m['eps_ref']['bim']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/results")
