"""AutoAttack (Croce & Hein 2020, torchattacks' standard version) at one threat model, with its adversarial
examples kept: replayed later on every deployed artifact (:mod:`ddzoo.verification.robust`) and stored batch by
batch in a folder, so a run of tens of minutes resumes where it stopped and ``zoo verify`` reuses what
``zoo eval`` found on the same weights and images.

A stored batch is one safetensors file: the rows the attack changed (an image it left alone is its own
adversarial) and metadata naming the weights, the images, the budget and the implementation; a file whose
metadata does not match is ignored, one whose rows leave the budget or the pixel box is refused.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ddzoo.attacks import attack_copy
from ddzoo.device import show_progress
from ddzoo.errors import CheckpointError
from ddzoo.eval.threat import ThreatModel
from ddzoo.stats import Accuracy

IMPLEMENTATION = "torchattacks 3.5.1 AutoAttack(version='standard')"
BATCH_SIZE = 100  # a stored batch: minutes of work on a CPU
MAX_STORED_BYTES = 64 << 20  # a stored batch larger than this is not read


def tensor_digest(*tensors: torch.Tensor) -> str:
    """sha256 of tensors' shapes and bytes (weights or images: what a stored batch must match)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(str((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
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
    still classifies it correctly; also the seconds spent attacking (stored batches cost none)."""

    threat: ThreatModel
    adversarials: torch.Tensor
    robust: torch.Tensor
    seconds: float
    reused_batches: int

    def record(self) -> dict:
        """The JSON of a robust-accuracy figure: threat model, attack, its accuracy with interval and n."""
        return {**self.threat.to_json(), "attack": "AutoAttack", "implementation": IMPLEMENTATION,
                **Accuracy.of(self.robust).to_json(), "label": self.threat.label("AutoAttack", len(self.robust)),
                "seconds": round(self.seconds, 1)}


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, *,
               store: Path | str | None = None, batch_size: int = BATCH_SIZE, seed: int = 0) -> AutoAttackResult:
    """Standard AutoAttack on ``(x, y)`` at ``threat``, batch by batch; with ``store``, batches found there for
    the same weights, images and budget are reused and new ones written there."""
    from ddzoo.eval.strong import _torchattacks  # the one place that names the install hint

    ta = _torchattacks()
    frozen = attack_copy(model).cpu()
    with torch.no_grad():
        classes = int(frozen(x[:1]).shape[1])
    weights = weights_digest(frozen)
    folder = None if store is None else Path(store)
    adversarials, seconds, reused = [], 0.0, 0
    starts = range(0, len(x), batch_size)
    for begin in tqdm(starts, desc=f"autoattack {threat.key}", disable=not show_progress(), leave=False,
                      unit="batch"):
        xb, yb = x[begin:begin + batch_size], y[begin:begin + batch_size]
        meta = {"weights": weights, "images": tensor_digest(xb, yb), "norm": threat.norm, "eps": repr(threat.eps),
                "seed": str(seed), "implementation": IMPLEMENTATION}
        path = None if folder is None else folder / f"{threat.norm}-{meta['eps']}-{meta['images'][:16]}.safetensors"
        found = None if path is None else _read_batch(path, xb, threat, meta)
        if found is None:
            started = time.perf_counter()
            attack = ta.AutoAttack(frozen, norm=threat.norm, eps=threat.eps, version="standard", n_classes=classes,
                                   seed=seed)
            found = _inside(attack(xb, yb).detach().cpu(), xb, threat)
            seconds += time.perf_counter() - started
            if path is not None:
                _write_batch(path, xb, found, meta)
        else:
            reused += 1
        adversarials.append(found)
    adversarial = torch.cat(adversarials)
    with torch.no_grad():
        robust = torch.cat([frozen(a).argmax(1) == b for a, b in
                            zip(adversarial.split(batch_size), y.split(batch_size), strict=True)])
    return AutoAttackResult(threat, adversarial, robust, seconds, reused)


def _inside(adversarial: torch.Tensor, x: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """``adversarial`` if every row is in the pixel box and within the budget (float rounding allowed)."""
    delta = (adversarial - x).flatten(1)
    norms = delta.abs().amax(1) if threat.norm == "Linf" else delta.norm(dim=1)
    if not torch.isfinite(adversarial).all() or adversarial.min() < 0 or adversarial.max() > 1 \
            or bool((norms > threat.eps * (1 + 1e-4) + 1e-6).any()):
        raise CheckpointError(f"AutoAttack adversarials outside {threat.label()} or the pixel box")
    return adversarial


def _read_batch(path: Path, x: torch.Tensor, threat: ThreatModel, meta: dict[str, str]) -> torch.Tensor | None:
    """A stored batch for exactly these weights, images and budget, else None (not there, or for others)."""
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_STORED_BYTES:
        raise CheckpointError(f"{path}: larger than a stored AutoAttack batch can be; delete it")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            stored_meta = handle.metadata() or {}
        if stored_meta != meta:
            return None
        rows = load_file(str(path))
        index, changed = rows["index"].long(), rows["adversarial"].float()
        adversarial = x.clone()
        adversarial[index] = changed
    except (SafetensorError, OSError, KeyError, IndexError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a stored AutoAttack batch ({type(err).__name__}); delete it") from None
    try:
        return _inside(adversarial, x, threat)
    except CheckpointError:
        raise CheckpointError(f"{path}: its adversarials leave {threat.label()} or the pixel box; delete it") from None


def _write_batch(path: Path, x: torch.Tensor, adversarial: torch.Tensor, meta: dict[str, str]) -> None:
    """Write the changed rows atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    index = (adversarial != x).flatten(1).any(1).nonzero().flatten()
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        save_file({"index": index.contiguous(), "adversarial": adversarial[index].contiguous()}, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
