"""ε_ref, the anchor of every l∞ ε grid, with one definition: the ε (l∞, [0,1] pixels) at which the *reference*
model's accuracy under FGS / BIM falls to 50 % (Yan et al. 2018, sec. 4).

It is stored beside a reference checkpoint (``eps_ref.json``, written by ``zoo eval``) and copied into a package's
config at export; :func:`resolve_eps_ref` finds it for ``zoo eval`` and ``zoo verify`` alike, and bisects on the
reference model only when nothing is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ddzoo.attacks import attack_copy
from ddzoo.errors import CheckpointError
from ddzoo.eval.robustness import LINF_ATTACKS, EvalSettings, find_eps_ref
from ddzoo.package import WEIGHTS, load_checkpoint, read_config, read_eps_ref, write_eps_ref

DEFINITION = "eps (l-inf, [0,1] pixels) at which this model's accuracy is 50 %"


def reference_of(checkpoint: Path, config: dict) -> Path:
    """The reference checkpoint of ``checkpoint``: itself for a reference model, else its ``init``."""
    if config.get("recipe", {}).get("name", "reference") == "reference":
        return checkpoint
    init = config.get("recipe", {}).get("init")
    if not init:
        raise CheckpointError(f"{checkpoint}: no reference recorded; pass --reference REFERENCE_CHECKPOINT")
    return Path(init)


def _values(stored: dict) -> dict[str, float]:
    return {attack: float(stored[attack]) for attack in LINF_ATTACKS}


def stored_eps_ref(checkpoint: Path | str) -> tuple[dict[str, Any], Path] | None:
    """The ε_ref record stored with ``checkpoint`` (its ``eps_ref.json`` or config), else with its reference, and
    the folder it was stored in; None when neither has one (or the reference is not here)."""
    checkpoint = Path(checkpoint)
    stored = read_eps_ref(checkpoint)
    if stored is not None:
        return stored, checkpoint
    try:
        reference = reference_of(checkpoint, read_config(checkpoint))
        stored = read_eps_ref(reference)
    except CheckpointError:
        return None
    return None if stored is None else (stored, reference)


def resolve_eps_ref(checkpoint: Path | str, x: torch.Tensor, y: torch.Tensor, *, reference: Path | str | None = None,
                    settings: EvalSettings | None = None, device: torch.device | None = None,
                    store: bool = False) -> tuple[dict[str, float], Path | None]:
    """ε_ref for evaluating or verifying ``checkpoint`` (a checkpoint or package folder) on ``(x, y)``.

    Stored with the checkpoint or its reference (:func:`stored_eps_ref`; given ``reference``, with that one
    only), else found by bisection on the reference model on ``(x, y)`` and, with ``store``, written beside it.

    Returns:
        ``({"fgs": ε, "bim": ε}, the folder it was stored in)``; None for the folder when found now.

    Raises:
        CheckpointError: nothing is stored and the reference model is not here to bisect on.
    """
    checkpoint = Path(checkpoint)
    if reference is not None:
        reference = Path(reference)
        stored = read_eps_ref(reference)
        if stored is not None:
            return _values(stored), reference
    else:
        found = stored_eps_ref(checkpoint)
        if found is not None:
            return _values(found[0]), found[1]
        reference = reference_of(checkpoint, read_config(checkpoint))
    if not (reference / WEIGHTS).is_file():
        raise CheckpointError(f"{checkpoint}: no eps_ref stored with it or its reference, and the reference "
                              f"({reference}) is not here to find one; export it from a checkpoint whose reference "
                              "has one ('zoo eval REFERENCE' stores it)")
    settings, device = settings or EvalSettings(), device or torch.device("cpu")
    model, _ = load_checkpoint(reference, device)
    frozen = attack_copy(model)
    found = {attack: find_eps_ref(frozen, x, y, attack, settings=settings, device=device) for attack in LINF_ATTACKS}
    if store:
        write_eps_ref(reference, {**found, "samples": len(x), "split": "test", "definition": DEFINITION})
    return found, None
