"""The tuning rule's choice among the held-out scores of scripts/cifar_tune.sh (docs/results/cifar10.md, "ResNet-20 on
CIFAR-10"): the largest held-out ρ₂ ratio among candidates losing at most 0.6 point with a ratio of at least 1.5
(ratios within 0.03 count as equal: then the smaller loss); if none, the fallback: the largest ratio among those
losing at most 1 point. Prints one JSON line: the chosen checkpoint, its options, and why.

    python scripts/cifar_choose.py runs/cifar-tune/holdout.jsonl
"""

from __future__ import annotations

import json
import sys


def choose(rows: list[dict]) -> dict:
    reference, candidates = rows[0], [r for r in rows[1:] if "rho2_50_normalized" in r and r.get("lam")]
    for r in candidates:
        r["ratio"] = r["rho2_50_normalized"] / reference["rho2_50_normalized"]
        r["loss_points"] = 100 * (reference["accuracy"] - r["accuracy"])
    passing = [r for r in candidates if r["loss_points"] <= 0.6 + 1e-9 and r["ratio"] >= 1.5]
    pool, rule = (passing, "selection") if passing else (
        [r for r in candidates if r["loss_points"] <= 1.0 + 1e-9], "fallback (no candidate met 0.6 pt and 1.5x)")
    if not pool:
        raise SystemExit("no candidate loses at most 1 point of held-out accuracy")
    best = max(r["ratio"] for r in pool)
    tied = [r for r in pool if r["ratio"] >= best - 0.03]
    chosen = min(tied, key=lambda r: r["loss_points"])
    options = (f"--lambda {chosen['lam']:g} --c {chosen['c']:g} --d {chosen['d']:g} "
               f"--candidates {chosen['candidates']} --epochs {chosen['epochs']}")
    return {"checkpoint": chosen["checkpoint"], "options": options, "rule": rule, "ratio": chosen["ratio"],
            "loss_points": chosen["loss_points"],
            "candidates": {r["checkpoint"]: [round(r["ratio"], 3), round(r["loss_points"], 2)] for r in candidates}}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(choose([json.loads(line) for line in f if line.strip()])))
