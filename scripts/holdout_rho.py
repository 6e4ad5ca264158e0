"""Held-out check for tuning Deep Defense: accuracy and ρ₂ on training images a run did not see.

Tune on these, never on the test set:  python scripts/holdout_rho.py CHECKPOINT... [--start 50000 --count 2000]
(train the candidates with ``zoo train ... --train-limit 50000`` so images 50000+ are held out; CIFAR-10 runs
use ``--train-limit 45000`` and ``--start 45000 --count 5000``). ρ₂ is DeepFool's at 50 iterations, K = 10,
in the model's normalised input space (per-channel std handled exactly). ``--pgd linf:8/255`` adds the
adversarial trainer's guard figure: PGD-10 accuracy (random start, its seed) at that budget on the first 1,000
held-out images, as `zoo train --guard-images 1000` measures it (the Deep-Defense-on-top rule reads it).
"""

from __future__ import annotations

import argparse
import json

import torch

from ddzoo.data import load_split
from ddzoo.eval.robustness import EvalSettings, deepfool_rho
from ddzoo.models.inference import accuracy
from ddzoo.package import load_checkpoint


def guard_accuracy(model, dataset: str, start: int, budget: str, images: int = 1000) -> float:
    """The adversarial trainer's guard (PGD-10, its seed) at ``budget`` on training images from ``start``."""
    from ddzoo.data.split import Split
    from ddzoo.eval.threat import ThreatModel
    from ddzoo.train.adversarial import AdversarialRecipe

    threat = ThreatModel.parse(budget)
    train = load_split(dataset, "train")
    holdout = Split(train.info, train.name, train.images[start:start + images], train.labels[start:start + images])
    recipe = AdversarialRecipe(norm=threat.norm.lower(), eps=threat.eps, guard_images=images, guard_steps=10)
    return recipe.guard(model, holdout, torch.device("cpu"))


def holdout_metrics(checkpoint: str, start: int, count: int, pgd: str | None = None) -> dict:
    model, config = load_checkpoint(checkpoint)
    x, y = load_split(config["dataset"], "train").tensors(limit=count, start=start)
    normalized = deepfool_rho(model, x, space="normalized", max_iter=50, settings=EvalSettings(),
                              device=torch.device("cpu"))
    recipe = config["recipe"]
    return {"checkpoint": checkpoint, "images": f"train[{start}:{start + len(x)}]", "lam": recipe.get("lam"),
            "c": recipe.get("c"), "d": recipe.get("d"), "candidates": recipe.get("num_candidates"),
            "epochs": recipe.get("epochs"), "recipe": recipe, "accuracy": accuracy(model, x, y),
            "rho2_50_normalized": normalized["rho2"], "fooled": normalized["fooled"],
            **({} if pgd is None else {"guard": {"budget": pgd, "attack": "PGD-10", "images": 1000,
                                                 "accuracy": guard_accuracy(model, config["dataset"], start, pgd)}})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--start", type=int, default=50000)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pgd", help="also PGD-10 accuracy at NORM:EPS on the first 1,000 (e.g. linf:8/255)")
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        print(json.dumps(holdout_metrics(checkpoint, args.start, args.count, args.pgd)), flush=True)


if __name__ == "__main__":
    main()
