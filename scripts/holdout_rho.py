"""Held-out check for tuning Deep Defense: accuracy and ρ₂ on training images a run did not see.

Tune on these, never on the test set:  python scripts/holdout_rho.py CHECKPOINT... [--start 50000 --count 2000]
(train the candidates with ``zoo train ... --train-limit 50000`` so images 50000+ are held out; CIFAR-10 runs
use ``--train-limit 45000`` and ``--start 45000 --count 5000``). ρ₂ is DeepFool's at 50 iterations, K = 10,
in the model's normalised input space (per-channel std handled exactly). ``--pgd linf:8/255`` adds the
adversarial trainer's guard figure: PGD-10 accuracy (random start, its seed) at that budget on the first 1,000
held-out images, as `zoo train --guard-images 1000` measures it (the Deep-Defense-on-top rule reads it).
``--during OUT`` scores a run still training instead: the weights of OUT's last saved epoch, loaded into
CHECKPOINT's architecture (its --init), clean accuracy only (the rule's stop after a candidate's first epoch).
"""

from __future__ import annotations

import argparse
import json

import torch

from ddzoo.data import load_split
from ddzoo.eval.robustness import EvalSettings, deepfool_rho
from ddzoo.models.inference import accuracy
from ddzoo.package import load_checkpoint
from ddzoo.train.loop import STATE


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


def during_training(checkpoint: str, out: str, start: int, count: int) -> dict:
    """Held-out clean accuracy of the last epoch ``out``'s training state saved (weights only, safetensors)."""
    from pathlib import Path

    from safetensors import safe_open

    model, config = load_checkpoint(checkpoint)
    with safe_open(str(Path(out) / STATE), framework="pt") as handle:
        epochs = json.loads(handle.metadata()["progress"])["epoch"]
        weights = {k[len("model."):]: handle.get_tensor(k) for k in handle.keys() if k.startswith("model.")}
    model.load_state_dict(weights)
    x, y = load_split(config["dataset"], "train").tensors(limit=count, start=start)
    return {"run": out, "epochs_done": epochs, "images": f"train[{start}:{start + len(x)}]",
            "accuracy": accuracy(model, x, y)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--start", type=int, default=50000)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pgd", help="also PGD-10 accuracy at NORM:EPS on the first 1,000 (e.g. linf:8/255)")
    parser.add_argument("--during", metavar="OUT", help="score OUT's last saved epoch instead (clean accuracy)")
    args = parser.parse_args()
    if args.during:
        print(json.dumps(during_training(args.checkpoints[0], args.during, args.start, args.count)), flush=True)
        return
    for checkpoint in args.checkpoints:
        print(json.dumps(holdout_metrics(checkpoint, args.start, args.count, args.pgd)), flush=True)


if __name__ == "__main__":
    main()
