"""A verification's progress between batches (``zoo verify --state DIR``): every few batches, and after the last
one, the per-image results so far are saved, so that a run stopped midway (or in Square, after the batches) goes
on from its last save instead of from the start.
One safetensors file; its metadata names the run (package bytes, settings, images) it belongs to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ddzoo.errors import InvalidArgumentError
from ddzoo.package import save_tensors

STATE = "verify-state.safetensors"
EVERY = 5  # batches between saves


def run_key(sha256s: dict[str, str], settings: dict, images: int) -> str:
    """What a saved state must match to be taken up: every verified file's bytes, the settings and the images."""
    text = json.dumps({"files": sha256s, "settings": settings, "images": images}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_progress(folder: Path, key: str, done: int, tensors: dict[str, torch.Tensor], counts: dict) -> None:
    """The first ``done`` batches' results, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / STATE, tensors, metadata={"run": key, "done": str(done), "counts": json.dumps(counts)})


def load_progress(folder: Path, key: str) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """``(batches done, tensors, counts)`` saved for the run ``key``; None without a state or for another run."""
    path = folder / STATE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as state:
            meta = state.metadata() or {}
            if meta.get("run") != key:
                return None
            done, counts = int(meta["done"]), json.loads(meta["counts"])
            tensors = {name: state.get_tensor(name) for name in state.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise InvalidArgumentError(f"cannot read the verification state {path} ({type(err).__name__}); delete it "
                                   "to start afresh") from None
    if done < 1 or not isinstance(counts, dict):
        raise InvalidArgumentError(f"the verification state {path} is malformed; delete it to start afresh")
    return done, tensors, counts


def clear_progress(folder: Path) -> None:
    (folder / STATE).unlink(missing_ok=True)
