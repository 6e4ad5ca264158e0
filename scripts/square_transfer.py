"""Is an INT8 artifact's higher Square accuracy robustness, or Square failing on quantised scores? Runs Square
(the package record's norm, ε_ref and query budget, seed 0, in `zoo verify`'s batches) on the fp32 and the INT8
ONNX artifact of one package, on the first N test images (default: as many as the record's Square figure), and
judges each artifact on both sets of adversarials. Prints JSON.

    python scripts/square_transfer.py ddzoo/hub/lenet-fashion-mnist-dd/main
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ddzoo.data import load_split
from ddzoo.eval.strong import square_adversarials
from ddzoo.package import read_config, read_verification
from ddzoo.runtime import open_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--images", type=int, default=None, help="default: the record's Square images")
    args = parser.parse_args()
    square = read_verification(args.package)["records"]["model.onnx"]["square"]
    attack = {"norm": square["norm"], "eps": square["eps"], "queries": square["queries"]}
    images = square["images"] if args.images is None else args.images
    x, y = load_split(read_config(args.package)["dataset"], "test").tensors(limit=images)
    correct: dict[tuple[str, str], torch.Tensor] = {}  # (whose adversarials, judged by) -> per image still right
    with open_runner(args.package / "model.onnx") as fp32, open_runner(args.package / "model.int8.onnx") as int8:
        runners = {"fp32": fp32, "int8": int8}
        for source, attacked in runners.items():
            adversarial = square_adversarials(attacked.predict, x, y, **attack)
            for judge, judging in runners.items():
                correct[source, judge] = judging.predict(adversarial).argmax(1) == y
    accuracy = {f"{judge} on {source}'s adversarials": round(flags.float().mean().item(), 4)
                for (source, judge), flags in correct.items()}
    either = correct["int8", "int8"] & correct["fp32", "int8"]
    print(json.dumps({"package": str(args.package), **attack, "images": len(x), **accuracy,
                      "int8 on either's adversarials": round(either.float().mean().item(), 4)}, indent=1))


if __name__ == "__main__":
    main()
