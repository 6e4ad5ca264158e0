"""Forward passes against the CPU's arithmetic: how close each runner of a package is to the hardware's limit.

Square and the replays of ``zoo verify`` are forward passes, so no change to the pipeline makes them cheaper than
the model's multiply-adds at the machine's peak. For the checkpoint (torch, the attack copy ``zoo verify`` runs)
and each ONNX artifact: images/s on real test images at ``--batch`` (the best of ``--rounds`` runs of about
``--seconds`` each, after a warm-up) and the GFLOP/s that makes, counting 2 FLOP per multiply-add of the model's
convolutions and linear layers (forward hooks on the loaded model).

    python bench/forward.py --package ddzoo/hub/resnet-cifar10-dd/main [--batch 250] [--seconds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ddzoo.attacks import attack_copy
from ddzoo.data import load_split
from ddzoo.package import load_checkpoint, package_artifacts, read_config
from ddzoo.runtime import open_runner


def multiply_adds(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of one image (convolutions and linear layers)."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * module.in_channels // module.groups * kernel
        elif isinstance(module, torch.nn.Linear):
            total += output[0].numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x[:1])
    for hook in hooks:
        hook.remove()
    return total


def images_per_second(predict, x: torch.Tensor, seconds: float, rounds: int) -> float:
    predict(x)  # warm-up
    best = 0.0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            predict(x)
            done += len(x)
        best = max(best, done / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    x, _ = load_split(read_config(args.package)["dataset"], "test").tensors(limit=args.batch)
    model, _ = load_checkpoint(args.package)
    macs = multiply_adds(model, x)
    copy = attack_copy(model)

    @torch.no_grad()
    def torch_predict(batch: torch.Tensor) -> torch.Tensor:
        return copy(batch)

    rows = {"checkpoint (torch, attack copy)": images_per_second(torch_predict, x, args.seconds, args.rounds)}
    for name in package_artifacts(args.package):
        with open_runner(args.package / name) as runner:
            rows[name] = images_per_second(runner.predict, x, args.seconds, args.rounds)
    result = {"package": str(args.package), "batch": args.batch, "multiply_adds_per_image": macs,
              "torch_threads": torch.get_num_threads(),
              "runners": {name: {"images_per_s": round(rate, 1), "gflop_per_s": round(rate * 2 * macs / 1e9, 1)}
                          for name, rate in rows.items()}}
    print(f"{macs / 1e6:.2f} M multiply-adds per image, batch {args.batch}, {torch.get_num_threads()} torch threads")
    for name, row in result["runners"].items():
        print(f"{name:34s} {row['images_per_s']:9.1f} images/s {row['gflop_per_s']:7.1f} GFLOP/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
