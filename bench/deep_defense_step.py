"""Cost of one Deep Defense training step over one plain step: same model, batch, machine, one run.

Times (median of several repeats) a plain cross-entropy SGD step, and Deep Defense steps at K = 10 and K = 3
with the chosen-class graph (ddzoo's default) and with the full graph for every candidate (the
straightforward implementation), on a real batch. Gradients of the two are equal (tests/train).

    python bench/deep_defense_step.py [--checkpoint CKPT] [--batch 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ddzoo.data import load_split
from ddzoo.train import DeepDefenseRecipe, load_checkpoint
from ddzoo.train.deep_defense import deep_defense_regularizer, freeze_batch_norm


def median_seconds(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="runs/bench/lenet-mnist-ref")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device")
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(2)
    model, config = load_checkpoint(args.checkpoint, device)
    freeze_batch_norm(model.train())
    x, y = load_split(config["dataset"], "train").tensors(limit=args.batch)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay the same across repeats

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def plain():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    def deep_defense(k: int, full_graph: bool):
        recipe = DeepDefenseRecipe(num_candidates=k)

        def step():
            logits = model(x)
            reg, _ = deep_defense_regularizer(model, x, y, logits, recipe, full_graph=full_graph)
            loss = F.cross_entropy(logits, y) + reg
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sync()
        return step

    base = median_seconds(plain, args.repeats)
    rows = [{"step": "plain (cross-entropy)", "seconds": base}]
    for k in (10, 3):
        for full in (False, True):
            seconds = median_seconds(deep_defense(k, full), args.repeats)
            rows.append({"step": f"deep defense K={k}, {'full graph' if full else 'chosen-class graph'}",
                         "seconds": seconds})
    print(f"{config['arch']} on {config['dataset']}, batch {args.batch}, {device}, torch {torch.__version__}")
    for row in rows:
        row["ratio_to_plain"] = row["seconds"] / base
        print(f"{row['step']:45s} {row['seconds'] * 1000:9.1f} ms {row['ratio_to_plain']:7.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
