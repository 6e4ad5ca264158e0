"""Held-out check for tuning Deep Defense: accuracy and ρ₂ on training images a run did not see.

Tune on these, never on the test set:  python scripts/holdout_rho.py CHECKPOINT... [--start 50000 --count 2000]
(train the candidates with ``zoo train ... --train-limit 50000`` so images 50000+ are held out).
"""

from __future__ import annotations

import argparse
import json

import torch

from ddzoo.attacks import attack_copy
from ddzoo.data import load_split
from ddzoo.eval.robustness import EvalSettings, deepfool_norms, summarize
from ddzoo.models.inference import accuracy
from ddzoo.train.checkpoint import load_checkpoint


def holdout_metrics(checkpoint: str, start: int, count: int) -> dict:
    model, config = load_checkpoint(checkpoint)
    x, y = load_split(config["dataset"], "train").tensors(limit=count, start=start)
    frozen = attack_copy(model)
    norms, fooled, iterations = deepfool_norms(frozen, x, max_iter=50, settings=EvalSettings(),
                                               device=torch.device("cpu"))
    std = torch.tensor(config["normalization"]["std"]).view(1, -1, 1, 1)
    mean = torch.tensor(config["normalization"]["mean"]).view(1, -1, 1, 1)
    x_norms = ((x - mean) / std).flatten(1).norm(dim=1)
    normalized = summarize(norms / std.flatten()[0], x_norms, fooled, iterations)  # std is uniform on MNIST
    recipe = config["recipe"]
    return {"checkpoint": checkpoint, "lam": recipe.get("lam"), "c": recipe.get("c"), "d": recipe.get("d"),
            "accuracy": accuracy(model, x, y), "rho2_50_normalized": normalized["rho2"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--start", type=int, default=50000)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        print(json.dumps(holdout_metrics(checkpoint, args.start, args.count)))


if __name__ == "__main__":
    main()
