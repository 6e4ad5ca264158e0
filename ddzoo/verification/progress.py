"""A verification's progress (``zoo verify --state DIR``): every few batches, and after the last one, the per-image
results so far are saved, and after the batches each runner's Square run as it ends, so that a run stopped midway
goes on from its last save instead of from the start.
Safetensors files; their metadata names the run (package bytes, settings, images) they belong to."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ddzoo.errors import InvalidArgumentError
from ddzoo.package import save_tensors

STATE = "verify-state.safetensors"
EVERY = 5  # batches between saves
SAVED_RUN = ".run.safetensors"  # the suffix of a saved Square run's file
HEADER_BYTES = 1_048_576  # a saved file's header (metadata and tensor index), at most
STATE_BYTES = 4096  # per image and runner, at most: each per-image result is a few bytes (about 50 on ResNet-20)


def run_key(sha256s: dict[str, str], settings: dict, images: int, eps_ref: dict) -> str:
    """What a saved state must match to be taken up: every verified file's bytes, the settings, the images and
    ε_ref (stored outside the verified files: in ``config.json`` or beside the reference)."""
    text = json.dumps({"files": sha256s, "settings": settings, "images": images, "eps_ref": eps_ref}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_progress(folder: Path, key: str, done: int, tensors: dict[str, torch.Tensor], counts: dict) -> None:
    """The first ``done`` batches' results, atomically (the folder made if need be)."""
    save_tensors(folder / STATE, tensors, metadata={"run": key, "done": str(done), "counts": json.dumps(counts)})


def load_progress(folder: Path, key: str, images: int, runners: int
                  ) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """``(batches done, tensors, counts)`` saved for the run ``key`` (on ``images`` images and ``runners`` runners,
    which bound the file's size); None without a state or for another run."""
    path = folder / STATE
    saved = _read(path, {"run": key}, max_bytes=images * runners * STATE_BYTES + HEADER_BYTES)
    if saved is None:
        return None
    meta, tensors = saved
    try:
        done, counts = int(meta["done"]), json.loads(meta["counts"])
    except (KeyError, ValueError) as err:
        raise _unreadable(path, err) from None
    if done < 1 or not isinstance(counts, dict):
        raise _malformed(path)
    return done, tensors, counts


class SavedRuns:
    """The per-image results of the long runs after the batches (Square on each runner), each saved as it ends
    under ``folder`` for the run ``key``, and taken from there when that run goes on; without a folder, every run
    is just made."""

    def __init__(self, folder: Path | None = None, key: str | None = None):
        self.folder, self.key = folder, key

    def flags(self, name: str, images: int, run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        """``run()``'s per-image flags (``images`` of them) and the seconds it took, or those saved for ``name``."""
        path = None if self.folder is None or self.key is None else self._path(name)
        if path is not None:
            saved = _saved_flags(path, self.key, name, images)
            if saved is not None:
                return saved
        started = time.perf_counter()
        flags = run()
        seconds = time.perf_counter() - started
        if path is not None:
            save_tensors(path, {"flags": flags}, metadata={"run": self.key, "name": name, "seconds": repr(seconds)})
        return flags, seconds

    def _path(self, name: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9.-]", "_", name)[:64]  # a short file name of our own, whatever the runner's
        return self.folder / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}{SAVED_RUN}"


def _saved_flags(path: Path, key: str, name: str, images: int) -> tuple[torch.Tensor, float] | None:
    saved = _read(path, {"run": key, "name": name}, max_bytes=images + 65_536)  # a byte per image and a header
    if saved is None:
        return None
    meta, tensors = saved
    try:
        flags, seconds = tensors["flags"], float(meta["seconds"])
    except (KeyError, ValueError) as err:
        raise _unreadable(path, err) from None
    if flags.dtype != torch.bool or flags.shape != (images,) or not (math.isfinite(seconds) and seconds >= 0):
        raise _malformed(path)
    return flags, seconds


def _read(path: Path, wanted: dict[str, str], max_bytes: int | None = None
          ) -> tuple[dict[str, str], dict[str, torch.Tensor]] | None:
    """The metadata and tensors of the saved file ``path`` when its metadata holds ``wanted`` (None: absent, or
    another run's); a damaged or crafted file, or one of this run beyond ``max_bytes`` (checked before its tensors
    are read), is a one-line error."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as raw:  # safetensors: an 8-byte header length, then the JSON header
            if int.from_bytes(raw.read(8), "little") > HEADER_BYTES:
                raise _malformed(path)
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if any(meta.get(k) != v for k, v in wanted.items()):
                return None
            if max_bytes is not None and path.stat().st_size > max_bytes:
                raise InvalidArgumentError(f"the verification state {path} is larger than this run's results can "
                                           f"be ({path.stat().st_size:,} > {max_bytes:,} bytes); delete it to start "
                                           "afresh")
            return meta, {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(f"cannot read the verification state {path} ({type(err).__name__}); delete it to "
                                "start afresh")


def _malformed(path: Path) -> InvalidArgumentError:
    return InvalidArgumentError(f"the verification state {path} is malformed; delete it to start afresh")


def clear_progress(folder: Path) -> None:
    """Remove the state and the saved runs, and the temporary files of a save that was killed midway."""
    for pattern in (STATE, f"*{SAVED_RUN}", f".{STATE}.*.tmp", f".*{SAVED_RUN}.*.tmp"):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
