"""Is an INT8 artifact's higher Square accuracy robustness, or Square failing on quantised scores? Runs Square
(torchattacks, the package record's ℓ∞ ε_ref and query budget, seed 0) on the fp32 and the INT8 ONNX artifact of
one package, on the first N test images, and judges each artifact on both sets of adversarials. Prints JSON.

    python scripts/square_transfer.py ddzoo/hub/lenet-fashion-mnist-dd/main --images 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchattacks

from ddzoo.data import load_split
from ddzoo.eval.strong import LogitsModule
from ddzoo.package import read_config, read_verification
from ddzoo.runtime import open_runner

BATCH = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    square = read_verification(args.package)["records"]["model.onnx"]["square"]
    x, y = load_split(read_config(args.package)["dataset"], "test").tensors(limit=args.images)
    correct: dict[tuple[str, str], torch.Tensor] = {}  # (whose adversarials, judged by) -> per image still right
    with open_runner(args.package / "model.onnx") as fp32, open_runner(args.package / "model.int8.onnx") as int8:
        runners = {"fp32": fp32, "int8": int8}
        for source, runner in runners.items():
            attack = torchattacks.Square(LogitsModule(runner.predict), norm="Linf", eps=square["eps"],
                                         n_queries=square.get("queries", 1000), seed=0)
            adversarial = torch.cat([attack(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])
            for judge, other in runners.items():
                correct[source, judge] = other.predict(adversarial).argmax(1) == y
    accuracy = {f"{judge} on {source}'s adversarials": round(flags.float().mean().item(), 4)
                for (source, judge), flags in correct.items()}
    both = correct["int8", "int8"] & correct["fp32", "int8"]
    print(json.dumps({"package": str(args.package), "norm": "Linf", "eps": square["eps"],
                      "queries": square.get("queries", 1000), "images": len(x), **accuracy,
                      "int8 on either's adversarials": round(both.float().mean().item(), 4)}, indent=1))


if __name__ == "__main__":
    main()
