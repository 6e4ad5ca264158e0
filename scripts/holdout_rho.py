"""Held-out check for tuning Deep Defense: accuracy and ρ₂ on training images a run did not see.

Tune on these, never on the test set:  python scripts/holdout_rho.py CHECKPOINT... [--start 50000 --count 2000]
(train the candidates with ``zoo train ... --train-limit 50000`` so images 50000+ are held out; CIFAR-10 runs
use ``--train-limit 45000`` and ``--start 45000 --count 5000``). ρ₂ is DeepFool's at 50 iterations, K = 10,
in the model's normalised input space (per-channel std handled exactly).
"""

from __future__ import annotations

import argparse
import json

import torch

from ddzoo.data import load_split
from ddzoo.eval.robustness import EvalSettings, deepfool_rho
from ddzoo.models.inference import accuracy
from ddzoo.package import load_checkpoint


def holdout_metrics(checkpoint: str, start: int, count: int) -> dict:
    model, config = load_checkpoint(checkpoint)
    x, y = load_split(config["dataset"], "train").tensors(limit=count, start=start)
    normalized = deepfool_rho(model, x, space="normalized", max_iter=50, settings=EvalSettings(),
                              device=torch.device("cpu"))
    recipe = config["recipe"]
    return {"checkpoint": checkpoint, "images": f"train[{start}:{start + len(x)}]", "lam": recipe.get("lam"),
            "c": recipe.get("c"), "d": recipe.get("d"), "candidates": recipe.get("num_candidates"),
            "epochs": recipe.get("epochs"), "recipe": recipe, "accuracy": accuracy(model, x, y),
            "rho2_50_normalized": normalized["rho2"], "fooled": normalized["fooled"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--start", type=int, default=50000)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        print(json.dumps(holdout_metrics(checkpoint, args.start, args.count)), flush=True)


if __name__ == "__main__":
    main()
