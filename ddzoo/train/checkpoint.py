"""Checkpoints: a folder with ``model.safetensors`` (weights, never pickle) and ``config.json``.

``config.json`` records the architecture, dataset, normalisation, recipe and every hyperparameter, the seed,
metrics and package versions, so a checkpoint can be rebuilt and compared without its training run.
Files are written under temporary names and renamed, so an interrupted save leaves the old state intact.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ddzoo import __version__
from ddzoo.data import get_dataset_info
from ddzoo.errors import CheckpointError
from ddzoo.fileio import atomic_write_bytes, write_json
from ddzoo.models import Classifier, create_model

FORMAT = "ddzoo-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MAX_CONFIG_BYTES = 1 << 20


def package_versions() -> dict[str, str]:
    return {"ddzoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically."""
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


def save_checkpoint(folder: Path | str, model: Classifier, config: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``config`` (completed with architecture, normalisation, versions)."""
    folder = Path(folder)
    info = get_dataset_info(config["dataset"])
    full = {
        "format": FORMAT,
        "arch": model.arch,
        "dataset": info.name,
        "classes": list(info.classes),
        "input_shape": list(info.image_shape),
        "normalization": {"mean": model.normalize.mean.flatten().tolist(),
                          "std": model.normalize.std.flatten().tolist(), "input_range": [0.0, 1.0]},
        **config,
        "versions": package_versions(),
    }
    save_tensors(folder / WEIGHTS, model.state_dict())
    write_json(folder / CONFIG, full)
    return folder


def read_config(folder: Path | str) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint, checked for the fields ddzoo needs."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG}; pass a checkpoint folder made by 'zoo train'")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: over the {MAX_CONFIG_BYTES}-byte limit of a config; re-create the checkpoint")
    try:
        config = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); re-create the checkpoint") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a {FORMAT} config (not a JSON object); re-create the checkpoint")
    missing = [key for key in ("format", "arch", "dataset") if key not in config]
    if missing or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} config (missing {missing or 'format'})")
    return config


def load_checkpoint(folder: Path | str, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the model of a checkpoint folder in eval mode, with its config."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS}; the checkpoint is incomplete, re-create it")
    model = create_model(config["arch"], config["dataset"])
    try:
        state = load_file(str(weights), device=str(device))
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"{weights}: cannot load weights into {config['arch']} ({err})") from err
    return model.to(device).eval(), config
