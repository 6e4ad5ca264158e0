"""The training loop shared by every recipe: SGD, per-epoch resumable state, progress, DDP.

State is saved after every epoch to ``training_state.safetensors`` in the output folder — weights,
optimizer buffers and the data generator's state, with the epoch, step and recipe in its metadata — as
one file written atomically, so a run killed at any point resumes from its last whole epoch and ends with
the same weights as an uninterrupted run. The learning rate is a pure function of the step, so no scheduler
state is needed. Nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from ddzoo.data import Split
from ddzoo.device import describe_machine, show_progress
from ddzoo.distributed import DistContext, all_reduce_mean
from ddzoo.errors import CheckpointError, InvalidArgumentError, TrainingDivergedError
from ddzoo.models import Classifier, memory_format_for
from ddzoo.models.inference import accuracy
from ddzoo.package import CONFIG, save_checkpoint, save_tensors

STATE = "training_state.safetensors"
BEST = "best_epoch.safetensors"  # the guard's best epoch so far (weights only), while a guarded run is unfinished
HOLDOUT_SCORED = 10_000  # held-out images scored after every epoch (the first ones: all of them in the zoo's splits)


@dataclass(frozen=True)
class SGDRecipe:
    """Optimisation settings every recipe shares (SGD with momentum and weight decay)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InvalidArgumentError("epochs, batch size and lr must be positive")

    def lr_at(self, step: int, total: int) -> float:
        """Learning rate at ``step`` of ``total``; constant unless a recipe says otherwise."""
        return self.lr
# guard(model, holdout, device) -> a held-out score (higher is better) whose best epoch the checkpoint keeps.
Guard = Callable[[Classifier, Split, torch.device], float | None]
# objective(wrapped, model, x, y) -> (loss, statistics); ``wrapped`` is the DDP wrapper when distributed.
Objective = Callable[[nn.Module, Classifier, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {f"optimizer.{index}.{name}": value for index, buffers in state["state"].items()
               for name, value in buffers.items() if isinstance(value, torch.Tensor)}
    return tensors, {"param_groups": state["param_groups"]}


def save_training_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, progress: dict[str, Any]) -> None:
    """Write the resumable state of a run as one safetensors file."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_tensors, optimizer_meta = _optimizer_tensors(optimizer)
    tensors.update(optimizer_tensors)
    tensors["generator"] = generator.get_state()
    save_tensors(out / STATE, tensors, metadata={"progress": json.dumps({**progress, **optimizer_meta})})


def load_training_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, recipe: dict[str, Any]) -> dict[str, Any]:
    """Restore model, optimizer and generator from ``out``; returns the saved progress."""
    path = out / STATE
    with safe_open(str(path), framework="pt") as handle:
        progress = json.loads(handle.metadata()["progress"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    if progress["recipe"] != recipe:
        raise CheckpointError(f"{path} was written by a run with other settings ({progress['recipe']}); "
                              "resume with the same options or choose another --out")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": progress["param_groups"]})
    generator.set_state(tensors["generator"])
    return progress


def _refuse_divergence(value: float, progress: dict[str, Any], out: Path) -> None:
    """Stop before a NaN or infinite loss (or weight sum) reaches the weights or the saved state."""
    if not math.isfinite(value):
        kept = f"{out} keeps epoch {progress['epoch']}" if progress["epoch"] else "nothing was saved"
        raise TrainingDivergedError(
            f"training diverged in epoch {progress['epoch'] + 1} (a loss or weight sum of {value}); {kept}. "
            f"Lower --lr (or the regulariser's --lam / --d) and start again with another --out")


def _holdout_accuracy(model: nn.Module, holdout: Split, device: torch.device) -> float:
    """Accuracy on held-out training images in eval mode; every module's train/eval flag is restored."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        return round(accuracy(model.eval(), *holdout.tensors(), device=device), 4)
    finally:
        for module, training in flags:
            module.training = training


def _guard_epoch(model: nn.Module, score: float | None, progress: dict[str, Any], out: Path,
                 device: torch.device) -> None:
    """Record the guard's score of the epoch just ended; keep the weights if it is the best so far."""
    if score is None:
        return
    curve = progress.setdefault("holdout_guard_curve", [])
    curve.append(score)
    if score >= max(curve):  # ties go to the later epoch (lower learning rate)
        save_tensors(out / BEST, model.state_dict())
        progress["best_epoch"] = progress["epoch"]


def fit(model: Classifier, train: Split, objective: Objective, *, out: Path, recipe: dict[str, Any],
        lr_at: Callable[[int, int], float], test: Split, config: dict[str, Any], device: torch.device,
        ctx: DistContext | None = None, resume: bool = False, stop_after_epochs: int | None = None,
        on_model: Callable[[nn.Module], nn.Module] | None = None, holdout: Split | None = None,
        after_step: Callable[[nn.Module], None] | None = None, guard: Guard | None = None) -> Path | None:
    """Train ``model`` with SGD (momentum, weight decay) on ``objective`` and write a checkpoint to ``out``.

    Args:
        model: the classifier, already on ``device``; only parameters with ``requires_grad`` are trained.
        train: training split; batches are shuffled and augmented from a generator seeded with the recipe.
        objective: see :data:`Objective`.
        out: checkpoint folder (also holds the resumable training state).
        recipe: hyperparameters (``epochs``, ``batch_size``, ``lr``, ``momentum``, ``weight_decay``,
            ``seed``) — stored with the state and checked on resume.
        lr_at: learning rate at ``(step, total_steps)``.
        test: split whose accuracy is recorded in the checkpoint's metrics.
        config: fields for ``config.json`` (dataset, recipe ...).
        ctx: distributed context; rank 0 writes files.
        resume: continue from ``out``'s training state.
        stop_after_epochs: stop after this many epochs of this call (the run can be resumed).
        on_model: wraps the model for the forward pass (DistributedDataParallel).
        holdout: held-out training images whose accuracy after every epoch is recorded (``holdout_curve`` in
            the saved progress and the checkpoint's metrics): a learning curve that never touches the test set.
        after_step: called with the model after every optimizer step (e.g. Parseval's retraction).
        guard: scores the model on ``holdout`` after every epoch (``holdout_guard_curve``); the checkpoint
            keeps the weights of the best-scoring epoch (``best_epoch``), e.g. against catastrophic overfitting.

    Returns:
        ``out`` when training is complete, None when stopped early.
    """
    ctx = ctx or DistContext()
    if (out / CONFIG).exists():
        if resume:  # already complete: nothing to do, and its config (metrics, ε_ref) stays as it is
            return out
        raise CheckpointError(f"{out} already holds a checkpoint; pick another --out (or --resume to keep it)")
    if (out / STATE).exists() and not resume:
        raise CheckpointError(f"{out} holds an unfinished run; pass --resume to continue it or pick another --out")
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=recipe["lr"], momentum=recipe["momentum"],
                                weight_decay=recipe["weight_decay"])
    generator = torch.Generator().manual_seed(recipe["seed"])
    progress = {"epoch": 0, "step": 0, "seconds": 0.0, "recipe": recipe}
    if resume and (out / STATE).exists():
        progress = load_training_state(out, model, optimizer, generator, recipe)
    layout = memory_format_for(model.arch, device)
    model.to(memory_format=layout)  # weights in the layout the forward pass is fastest in; saved contiguous
    wrapped = on_model(model) if on_model else model
    global_batch = recipe["batch_size"]
    steps_per_epoch = math.ceil(len(train) / global_batch)
    total_steps = recipe["epochs"] * steps_per_epoch
    epochs_run = 0
    while progress["epoch"] < recipe["epochs"]:
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            return None
        started = time.perf_counter()
        epoch = progress["epoch"]
        bar = tqdm(train.batches(global_batch, shuffle=True, augment=True, generator=generator), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{recipe['epochs']}", disable=not (show_progress() and ctx.is_main),
                   leave=False)
        for x, y in bar:
            x, y = ctx.shard(x, y)
            lr = lr_at(progress["step"], total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
            loss, stats = objective(wrapped, model, x, y.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _refuse_divergence(all_reduce_mean(loss.item(), ctx, device), progress, out)  # same verdict on every rank
            optimizer.step()
            if after_step is not None:
                after_step(model)
            progress["step"] += 1
            bar.set_postfix({k: f"{all_reduce_mean(v, ctx, device) if ctx.enabled else v:.3f}"
                             for k, v in stats.items()}, refresh=False)
        _refuse_divergence(float(sum(p.detach().sum() for p in parameters)), progress, out)
        progress["epoch"] += 1
        progress["seconds"] += time.perf_counter() - started
        if holdout is not None and ctx.is_main:
            progress.setdefault("holdout_curve", []).append(_holdout_accuracy(model, holdout, device))
            if guard is not None:
                _guard_epoch(model, guard(model, holdout, device), progress, out, device)
        epochs_run += 1
        if ctx.is_main:
            save_training_state(out, model, optimizer, generator, progress)
        ctx.barrier()
    if ctx.is_main:
        if "best_epoch" in progress:
            model.load_state_dict(load_file(str(out / BEST), device=str(device)))
        metrics = {"test_accuracy": accuracy(model.eval(), *test.tensors(), device=device),
                   "train_seconds": round(progress["seconds"], 1), "device": str(device),
                   "machine": describe_machine(device), "world_size": ctx.world_size}
        for key in ("holdout_curve", "holdout_guard_curve", "best_epoch"):
            if key in progress:
                metrics[key] = progress[key]
        save_checkpoint(out, model, {**config, "seed": recipe["seed"], "metrics": metrics})
    ctx.barrier()
    return out


def starting_model(arch: str, dataset: str, init: Path | str | None, seed: int, device: torch.device
                   ) -> tuple[Classifier, str, str]:
    """``(model in train mode, arch, dataset)``: the checkpoint ``init`` to fine-tune, or a new ``arch`` model."""
    from ddzoo.models import create_model
    from ddzoo.package import load_checkpoint

    if init is not None:
        model, config = load_checkpoint(init, device)
        return model.train(), config["arch"], config["dataset"]
    return create_model(arch, dataset, seed=seed).to(device).train(), arch, dataset


def train_recipe(name: str, arch: str, dataset: str, out: Path | str, recipe: Any, *, init: Path | str | None,
                 device: str | None, resume: bool, stop_after_epochs: int | None, train_limit: int | None,
                 after_step: Callable[[nn.Module], None] | None = None,
                 reshape: Callable[[Classifier, str], Classifier] | None = None, guard: Guard | None = None
                 ) -> Path | None:
    """Train with a recipe dataclass that has ``validate``, ``objective``, ``lr_at`` and ``seed`` (reference-
    style recipes: adversarial, Parseval), from scratch or fine-tuning ``init``; records it as ``name``.
    ``reshape(model, dataset)`` may swap the starting model for the recipe's form of its architecture."""
    from dataclasses import asdict

    from ddzoo.device import pick_device

    recipe.validate()
    dev = pick_device(device)
    model, arch, dataset = starting_model(arch, dataset, init, recipe.seed, dev)
    if reshape is not None:
        model = reshape(model, dataset)
    settings = {**asdict(recipe), "init": None if init is None else str(init), "train_limit": train_limit}
    return run_training(model, dataset, out, recipe.objective, recipe=settings, lr_at=recipe.lr_at,
                        config={"dataset": dataset, "recipe": {"name": name, **settings}}, device=dev,
                        resume=resume, stop_after_epochs=stop_after_epochs, train_limit=train_limit,
                        after_step=after_step, guard=guard)


def run_training(model: Classifier, dataset: str, out: Path | str, objective: Objective, *,
                 recipe: dict[str, Any], lr_at: Callable[[int, int], float], config: dict[str, Any],
                 device: torch.device, resume: bool = False, stop_after_epochs: int | None = None,
                 train_limit: int | None = None, after_step: Callable[[nn.Module], None] | None = None,
                 guard: Guard | None = None) -> Path | None:
    """Load the data, join the torchrun job if there is one, wrap the model in DDP and :func:`fit`.

    With ``train_limit``, the training images past it are held out; the first :data:`HOLDOUT_SCORED` of them are
    scored after every epoch.
    """
    from ddzoo.data import load_split
    from ddzoo.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed(device)
    try:
        train = load_split(dataset, "train")
        holdout = None
        if train_limit and train_limit < len(train):  # the images left out are scored after every epoch
            end = train_limit + HOLDOUT_SCORED
            holdout = Split(train.info, train.name, train.images[train_limit:end], train.labels[train_limit:end])
            train = Split(train.info, train.name, train.images[:train_limit], train.labels[:train_limit])

        def ddp(module: nn.Module) -> nn.Module:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            return DistributedDataParallel(module, device_ids=ids)

        return fit(model, train, objective, out=Path(out), recipe=recipe, lr_at=lr_at,
                   test=load_split(dataset, "test"), config=config, device=device, ctx=ctx, resume=resume,
                   stop_after_epochs=stop_after_epochs, on_model=ddp if ctx.enabled else None,
                   holdout=holdout, after_step=after_step, guard=guard)
    finally:
        shutdown_distributed(ctx)
