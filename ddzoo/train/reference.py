"""Reference (vanilla) training: cross-entropy with SGD + momentum and a cosine learning-rate schedule.

The reference model is what Deep Defense fine-tunes and what ε_ref is measured on.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ddzoo.data import load_split
from ddzoo.device import pick_device, show_progress
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.accuracy import accuracy
from ddzoo.models import create_model
from ddzoo.train.checkpoint import save_checkpoint


@dataclass(frozen=True)
class ReferenceRecipe:
    """Hyperparameters of reference training (all recorded in the checkpoint's config)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    train_limit: int | None = None  # train on the first N training images only (smoke runs)

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InvalidArgumentError("epochs, batch size and lr must be positive")


def train_reference(arch: str, dataset: str, out: Path | str, recipe: ReferenceRecipe = ReferenceRecipe(),
                    device: str | None = None) -> Path:
    """Train ``arch`` on ``dataset`` from scratch and save a checkpoint folder at ``out``.

    Args:
        arch: registered architecture (``lenet``, ``mlp``, ``convnet``, ``resnet20``).
        dataset: ``mnist``, ``fashion-mnist`` or ``cifar10``.
        out: checkpoint folder to write.
        recipe: hyperparameters.
        device: torch device; default CUDA when available.

    Returns:
        ``out`` as a Path.
    """
    recipe.validate()
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    model = create_model(arch, dataset).to(dev)
    train = load_split(dataset, "train")
    if recipe.train_limit:
        train = type(train)(train.info, train.name, train.images[: recipe.train_limit],
                            train.labels[: recipe.train_limit])
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, nesterov=True)
    steps = recipe.epochs * math.ceil(len(train) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    generator = torch.Generator().manual_seed(recipe.seed)
    started = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        bar = tqdm(train.batches(recipe.batch_size, shuffle=True, augment=True, generator=generator),
                   total=math.ceil(len(train) / recipe.batch_size), desc=f"epoch {epoch + 1}/{recipe.epochs}",
                   disable=not show_progress(), leave=False)
        for x, y in bar:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{(logits.argmax(1) == y).float().mean().item():.3f}")
    wall = time.perf_counter() - started
    model.eval()
    test = load_split(dataset, "test")
    metrics = {"test_accuracy": accuracy(model, *test.tensors(), device=dev), "train_seconds": round(wall, 1),
               "device": str(dev)}
    return save_checkpoint(out, model.cpu(), {"dataset": dataset, "recipe": {"name": "reference", **asdict(recipe)},
                                              "seed": recipe.seed, "metrics": metrics})
