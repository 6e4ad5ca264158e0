"""FMN against DDN and DeepFool on real test images: foolbox 3.3.4's own FMN, FMN with ddzoo's repaired
projection from zero, and ddzoo's best-of attacks as `zoo eval` runs them (FMN started from DeepFool).

    ZOO_DATA_DIR=../shared/data python scripts/fmn_check.py MODEL [--images 32] [--steps 100]

Prints, per attack, the share of images fooled and the median ‖r‖₂ (∞ where an attack failed). Figures in
docs/benchmarks.md ("Issue 28, item by item").
"""

from __future__ import annotations

import argparse

import foolbox as fb
import torch

import ddzoo
from ddzoo.attacks import attack_copy
from ddzoo.data import load_split
from ddzoo.eval.fmn import L2FMN
from ddzoo.eval.strong import label_change_norms, minimum_norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a zoo model, e.g. resnet-cifar10-dd or lenet-mnist-ref")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    model = attack_copy(ddzoo.load(args.model))
    dataset = next(m.dataset for m in ddzoo.list_models() if m.name == args.model)
    x, y = load_split(dataset).tensors(limit=args.images)
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    fmodel, criterion = fb.PyTorchModel(model, bounds=(0.0, 1.0)), fb.criteria.Misclassification(y)
    found = {f"foolbox FMN ({args.steps} steps)": fb.attacks.L2FMNAttack(steps=args.steps),
             "FMN, projection repaired, from zero": L2FMN(steps=args.steps)}
    norms = {name: label_change_norms(model, x, y, attack(fmodel, x, criterion, epsilons=None)[1], wrong)
             for name, attack in found.items()}
    norms.update({f"ddzoo best-of part: {k}": v for k, v in minimum_norms(model, x, y, steps=args.steps).items()})
    print(f"{args.model}, first {len(x)} {dataset} test images, {args.steps} steps")
    for name, n in norms.items():
        print(f"{name:44s} fooled {n.isfinite().float().mean():.3f}  median ‖r‖₂ {n.median():.4f}")


if __name__ == "__main__":
    main()
