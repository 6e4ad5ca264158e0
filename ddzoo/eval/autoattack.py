"""AutoAttack (Croce & Hein 2020, torchattacks' standard version) at one threat model, with its adversarial
examples kept: replayed on every deployed artifact (:mod:`ddzoo.verification.robust`) and stored batch by batch,
so a run of tens of minutes resumes where it stopped and ``zoo verify`` reuses what ``zoo eval`` found on the
same weights and images.

A stored batch is one safetensors file (by default under ``ZOO_HOME/autoattack``): the rows the attack changed
(an image it left alone is its own adversarial), metadata naming the weights, the images, the budget and the
implementation, and an HMAC-SHA256 of all of it under a key only this user's cache holds. A stored batch
claims which images resisted the attack, so a forged one could flatter a model while staying inside the
budget: a batch whose MAC does not verify (written elsewhere, or edited) is attacked again unless ``trust``
says otherwise, and every figure records how many of its batches were reused and how many were unverified.
A batch whose rows leave the budget or the pixel box is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ddzoo import constants
from ddzoo.attacks import attack_copy
from ddzoo.device import show_progress
from ddzoo.errors import CheckpointError
from ddzoo.eval.threat import ThreatModel
from ddzoo.models.inference import predict_labels
from ddzoo.stats import Accuracy

BATCH_SIZE = 100  # a stored batch: minutes of work on a CPU
MAX_STORED_BYTES = 64 << 20  # a stored batch larger than this is not read
FIGURE_FIELDS = ("attack", "label", "accuracy", "ci95", "images")  # what listings quote of a robust-accuracy figure


def store_dir() -> Path:
    """Where AutoAttack batches are stored unless a folder is given: the zoo cache."""
    return constants.ZOO_HOME / "autoattack"


def implementation() -> str:
    """The attack as records name it (with the installed torchattacks version)."""
    from ddzoo.eval.strong import _torchattacks

    return f"torchattacks {_torchattacks().__version__} AutoAttack(version='standard')"


def tensor_digest(*tensors: torch.Tensor) -> str:
    """sha256 of tensors' shapes, dtypes and bytes (weights or images: what a stored batch must match)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(str((tuple(t.shape), str(t.dtype))).encode())
        digest.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return digest.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's state (names, shapes and values), whatever file it was read from."""
    state = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(tensor_digest(state[name]).encode())
    return digest.hexdigest()


@dataclass
class AutoAttackResult:
    """Per image: the adversarial example (the clean image where the attack found none) and whether the model
    still classifies it correctly; the seconds spent attacking, and the batches taken from the store (of them,
    those whose MAC did not verify, accepted only with ``trust``)."""

    threat: ThreatModel
    adversarials: torch.Tensor
    robust: torch.Tensor
    seconds: float
    batches: int
    reused_batches: int
    unverified_batches: int
    implementation: str

    def record(self, attack: str = "AutoAttack", robust: torch.Tensor | None = None, **fields) -> dict:
        """The JSON of a robust-accuracy figure: threat model, attack, accuracy with interval and n (of
        ``robust`` if given: the adversarials replayed elsewhere), where the adversarials came from."""
        flags = self.robust if robust is None else robust
        return {**self.threat.to_json(), "attack": attack, "implementation": self.implementation,
                "label": self.threat.label(attack, len(flags)), **Accuracy.of(flags).to_json(), **fields,
                "batches": {"total": self.batches, "reused": self.reused_batches,
                            "reused_unverified": self.unverified_batches},
                "seconds": round(self.seconds, 1)}


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, *,
               store: Path | str | None = None, trust: bool = False, batch_size: int = BATCH_SIZE,
               seed: int = 0, replay_only: bool = False) -> AutoAttackResult:
    """Standard AutoAttack on ``(x, y)`` at ``threat``, batch by batch; batches stored in ``store`` (default:
    :func:`store_dir`) for the same weights, images, budget and implementation are reused, new ones stored.
    ``trust``: also reuse batches whose MAC does not verify (counted in the result). ``replay_only``: raise
    :class:`CheckpointError` instead of attacking a batch that is not stored."""
    from ddzoo.eval.strong import _classes, _torchattacks

    ta = _torchattacks()
    frozen = attack_copy(model).cpu()
    classes = _classes(frozen, x)
    weights, name = weights_digest(frozen), implementation()
    folder = Path(store) if store is not None else store_dir()
    key = _key()
    adversarials, seconds, reused, unverified = [], 0.0, 0, 0
    starts = range(0, len(x), batch_size)
    for begin in tqdm(starts, desc=f"autoattack {threat.key}", disable=not show_progress(), leave=False,
                      unit="batch"):
        xb, yb = x[begin:begin + batch_size], y[begin:begin + batch_size]
        meta = {"weights": weights, "images": tensor_digest(xb, yb), "norm": threat.norm, "eps": repr(threat.eps),
                "seed": str(seed), "implementation": name}
        path = folder / f"{weights[:16]}-{threat.norm}-{meta['eps']}-{meta['images'][:16]}.safetensors"
        found, verified = _read_batch(path, xb, threat, meta, key)
        if found is not None and (verified or trust):
            reused += 1
            unverified += not verified
        elif replay_only:
            raise CheckpointError(f"no stored AutoAttack batch at {threat.label()} for images {begin}-"
                                  f"{begin + len(xb) - 1} in {folder}; make it with zoo eval --autoattack first")
        else:
            started = time.perf_counter()
            attack = ta.AutoAttack(frozen, norm=threat.norm, eps=threat.eps, version="standard", n_classes=classes,
                                   seed=seed)
            found = attack(xb, yb).detach().cpu()
            if not _inside(found, xb, threat):
                raise CheckpointError(f"{name} returned examples outside {threat.label()} or the pixel box")
            seconds += time.perf_counter() - started
            _write_batch(path, xb, found, meta, key)
        adversarials.append(found)
    adversarial = torch.cat(adversarials)
    robust = predict_labels(frozen, adversarial, batch_size=batch_size) == y
    return AutoAttackResult(threat, adversarial, robust, seconds, len(starts), reused, unverified, name)


def _key() -> bytes:
    """This cache's secret MAC key (created once, readable by its owner only)."""
    path = constants.ZOO_HOME / "keys" / "autoattack.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process
            pass
        else:
            with os.fdopen(handle, "wb") as out:
                out.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise CheckpointError(f"{path}: not a 32-byte key; delete it (stored AutoAttack batches will be redone)")
    return key


def _mac(key: bytes, meta: dict[str, str], index: torch.Tensor, rows: torch.Tensor) -> str:
    message = hmac.new(key, json.dumps(meta, sort_keys=True).encode(), hashlib.sha256)
    message.update(index.contiguous().numpy().tobytes())
    message.update(rows.contiguous().numpy().tobytes())
    return message.hexdigest()


def _inside(adversarial: torch.Tensor, x: torch.Tensor, threat: ThreatModel) -> bool:
    """Whether every row is in the pixel box and within the budget (float rounding allowed)."""
    delta = (adversarial - x).flatten(1)
    norms = delta.abs().amax(1) if threat.norm == "Linf" else delta.norm(dim=1)
    return (adversarial.shape == x.shape and bool(torch.isfinite(adversarial).all()) and adversarial.min() >= 0
            and adversarial.max() <= 1 and not bool((norms > threat.eps * (1 + 1e-4) + 1e-6).any()))


def _read_batch(path: Path, x: torch.Tensor, threat: ThreatModel, meta: dict[str, str], key: bytes
                ) -> tuple[torch.Tensor | None, bool]:
    """A stored batch for exactly these weights, images and budget (None: absent or for others), and whether
    its MAC verifies."""
    if not path.is_file():
        return None, False
    if path.stat().st_size > MAX_STORED_BYTES:
        raise CheckpointError(f"{path}: larger than a stored AutoAttack batch can be; delete it")
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = dict(handle.metadata() or {})
        mac = stored.pop("mac", "")
        if stored != meta:
            return None, False
        rows = load_file(str(path))
        index, changed = rows["index"], rows["adversarial"]
        if (index.dtype != torch.int64 or changed.dtype != torch.float32 or index.dim() != 1
                or changed.shape != (len(index), *x.shape[1:])):
            raise ValueError("unexpected tensors")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(x)):
            raise ValueError("rows outside the batch")
        adversarial = x.clone()
        adversarial[index] = changed
    except (SafetensorError, OSError, KeyError, IndexError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: not a stored AutoAttack batch ({type(err).__name__}); delete it") from None
    if not _inside(adversarial, x, threat):
        raise CheckpointError(f"{path}: its adversarial examples leave {threat.label()} or the pixel box; delete it")
    return adversarial, hmac.compare_digest(mac, _mac(key, meta, index, changed))


def _write_batch(path: Path, x: torch.Tensor, adversarial: torch.Tensor, meta: dict[str, str], key: bytes) -> None:
    """Write the changed rows with their MAC atomically (temporary file, then rename)."""
    index = (adversarial != x).flatten(1).any(1).nonzero().flatten().contiguous()
    rows = adversarial[index].contiguous()
    signed = {**meta, "mac": _mac(key, meta, index, rows)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        try:
            save_file({"index": index, "adversarial": rows}, tmp, metadata=signed)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as err:
        raise CheckpointError(f"cannot store an AutoAttack batch at {path} ({err.strerror or err}); pass another "
                              "folder with --adversarials") from None
