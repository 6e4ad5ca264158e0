"""CPU training speed: the plain step before and after, and the Deep Defense step as a ratio to it, one run.

Rows, all on the same real batch of one model (median of ``--repeats`` after a warm-up):
- plain step, NCHW eager: the trainer before it chose a layout (the "before" anchor);
- plain step, the trainer's layout (``channels_last`` where the architecture's spec says so, on CPUs);
- plain step, that layout under ``torch.compile`` (not used by the trainer: see docs/benchmarks.md);
- Deep Defense steps at K = 3 and K = 10 as the trainer runs them (frozen batch norm as ``x*scale+shift``,
  chosen-class graph), and with batch norm frozen the older way (eval-mode ``BatchNorm2d``) for comparison.
Ratios are to the trainer's plain step. Gradients of the variants are equal (tests/train).

    python bench/train_step.py [--checkpoint CKPT] [--batch 100] [--repeats 5] [--device cpu] [--json OUT]

Without ``--checkpoint``, a ResNet-20 is trained for 1 epoch on 10,000 CIFAR-10 images into runs/bench/.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.data import load_split
from ddzoo.models import memory_format_for
from ddzoo.package import load_checkpoint
from ddzoo.train import DeepDefenseRecipe, ReferenceRecipe, train_reference
from ddzoo.train.deep_defense import deep_defense_regularizer, freeze_batch_norm

RUNS = Path("runs/bench")


def median_seconds(step, repeats: int) -> float:
    step()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, compiled: bool = False):
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay the same across repeats

    def step():
        loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def deep_defense_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int):
    recipe = DeepDefenseRecipe(num_candidates=k)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)

    def step():
        logits = model(x)
        reg, _ = deep_defense_regularizer(model, x, y, logits, recipe)
        loss = F.cross_entropy(logits, y) + reg
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (scripts/device_check.sh)")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = torch.device(args.device)
    ckpt = Path(args.checkpoint) if args.checkpoint else RUNS / "resnet20-cifar10-1epoch"
    if not (ckpt / "config.json").is_file():
        print(f"training {ckpt}: zoo train --model resnet20 --dataset cifar10 --epochs 1 --lr 0.1 "
              f"--train-limit 10000 --out {ckpt}", flush=True)
        train_reference("resnet20", "cifar10", ckpt, ReferenceRecipe(epochs=1, lr=0.1), train_limit=10_000)
    base, config = load_checkpoint(ckpt)
    layout = memory_format_for(config["arch"], device)
    x, y = (t.to(device) for t in load_split(config["dataset"], "train").tensors(limit=args.batch))

    def model_in(fmt: torch.memory_format) -> nn.Module:
        return copy.deepcopy(base).train().to(device, memory_format=fmt)

    xl = x.contiguous(memory_format=layout)
    rows = [("plain step, NCHW eager (before)", median_seconds(plain_step(model_in(torch.contiguous_format), x, y),
                                                                args.repeats))]
    rows.append((f"plain step, trainer's layout ({str(layout).split('.')[-1]})",
                 median_seconds(plain_step(model_in(layout), xl, y), args.repeats)))
    if not args.skip_compile:
        rows.append(("plain step, trainer's layout + torch.compile",
                     median_seconds(plain_step(model_in(layout), xl, y, compiled=True), args.repeats)))
    for k in (3, 10):
        rows.append((f"deep defense K={k} (trainer: frozen BN as x*scale+shift)",
                     median_seconds(deep_defense_step(freeze_batch_norm(model_in(layout)), xl, y, k), args.repeats)))
        rows.append((f"deep defense K={k} (eval-mode BatchNorm2d, before)",
                     median_seconds(deep_defense_step(freeze_batch_norm(model_in(layout), as_affine=False), xl, y, k),
                                    args.repeats)))
    plain = rows[1][1]
    print(f"{config['arch']} on {config['dataset']}, batch {args.batch}, {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'step':58s} {'ms':>8s} {'img/s':>8s} {'x plain':>8s}")
    report = []
    for name, seconds in rows:
        report.append({"step": name, "seconds": seconds, "images_per_s": args.batch / seconds,
                       "ratio_to_plain": seconds / plain})
        print(f"{name:58s} {seconds * 1000:8.1f} {args.batch / seconds:8.1f} {seconds / plain:8.2f}")
    print(f"plain step speed-up over NCHW eager: {rows[0][1] / plain:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": str(ckpt), "batch": args.batch, "device": str(device),
                                               "rows": report},
                                              indent=2))


if __name__ == "__main__":
    main()
