"""``zoo eval``: evaluate a checkpoint on a real test set, with ε_ref taken from (or stored with) its reference."""

from __future__ import annotations

from pathlib import Path

import torch

from ddzoo.attacks import attack_copy
from ddzoo.data import get_dataset_info, load_split
from ddzoo.device import pick_device
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.eval.robustness import LINF_ATTACKS, EvalSettings, evaluate_robustness, find_eps_ref
from ddzoo.package import load_checkpoint, read_eps_ref, write_eps_ref


def reference_of(checkpoint: Path, config: dict) -> Path:
    """The reference checkpoint of ``checkpoint``: itself for a reference model, else its ``init``."""
    if config.get("recipe", {}).get("name", "reference") == "reference":
        return checkpoint
    init = config.get("recipe", {}).get("init")
    if not init:
        raise CheckpointError(f"{checkpoint}: no reference recorded; pass --reference REFERENCE_CHECKPOINT")
    return Path(init)


def ensure_eps_ref(reference: Path, x: torch.Tensor, y: torch.Tensor, *, settings: EvalSettings,
                   device: torch.device) -> dict[str, float]:
    """ε_ref of the reference checkpoint: read from its ``eps_ref.json`` (or its config), or found by bisection
    and stored in ``eps_ref.json`` beside it — the checkpoint's own files are never edited."""
    stored = read_eps_ref(reference)
    if stored is not None:
        return {attack: float(stored[attack]) for attack in LINF_ATTACKS}
    model, _ = load_checkpoint(reference, device)
    frozen = attack_copy(model)
    eps_ref = {attack: find_eps_ref(frozen, x, y, attack, settings=settings, device=device)
               for attack in LINF_ATTACKS}
    write_eps_ref(reference, {**eps_ref, "samples": len(x), "split": "test",
                              "definition": "eps (l-inf, [0,1] pixels) at which this model's accuracy is 50 %"})
    return eps_ref


def evaluate_checkpoint(checkpoint: Path | str, *, dataset: str | None = None, limit: int | None = None,
                        reference: Path | str | None = None, settings: EvalSettings | None = None,
                        device: str | None = None, attacks: tuple[str, ...] = (), autoattack: bool = False,
                        strong_limit: int | None = None) -> dict:
    """Evaluate a checkpoint folder on the test split of its dataset (or ``dataset``).

    Args:
        checkpoint: a folder written by ``zoo train``.
        dataset: test set to use; default the checkpoint's own (must have the same image shape).
        limit: evaluate on the first ``limit`` test images only.
        reference: the reference checkpoint for ε_ref; default the checkpoint itself for a reference
            model, else the checkpoint it was fine-tuned from.
        settings: attack settings.
        device: torch device; default CUDA when available.
        attacks: minimum-norm attacks for the stronger-attack section (``deepfool``, ``fmn``, ``ddn``, ``cw``,
            ``bb``; see :mod:`ddzoo.eval.strong`); empty: none.
        autoattack: also AutoAttack robust accuracy at the dataset's standard budgets.
        strong_limit: run the stronger attacks on the first N of the evaluated images only (they are slow).

    Returns:
        the metrics of :func:`evaluate_robustness` plus ``checkpoint``, ``dataset`` and ``reference``, and
        ``strong`` and ``masking`` (the gradient-masking checklist, :mod:`ddzoo.eval.masking`) when asked.
    """
    checkpoint = Path(checkpoint)
    settings = settings or EvalSettings()
    dev = pick_device(device)
    model, config = load_checkpoint(checkpoint, dev)
    dataset = dataset or config["dataset"]
    if list(get_dataset_info(dataset).image_shape) != list(config["input_shape"]):
        raise InvalidArgumentError(
            f"{checkpoint} takes {config['input_shape']} images, {dataset} has "
            f"{list(get_dataset_info(dataset).image_shape)}; pass --dataset {config['dataset']}")
    x, y = load_split(dataset, "test").tensors(limit=limit)
    reference = Path(reference) if reference else reference_of(checkpoint, config)
    eps_ref = ensure_eps_ref(reference, x, y, settings=settings, device=dev)
    metrics = evaluate_robustness(model, x, y, eps_ref, settings=settings, device=dev)
    if attacks or autoattack:
        from ddzoo.eval.masking import masking_checklist, masking_measurements
        from ddzoo.eval.strong import strong_record

        n = strong_limit or len(x)
        metrics["strong"] = strong_record(model.cpu(), x[:n], y[:n], dataset, attacks=attacks or ("deepfool",),
                                          autoattack=autoattack)
        metrics["masking"] = masking_measurements(attack_copy(model).cpu(), x[:n], y[:n], eps_ref, settings=settings,
                                                  device=torch.device("cpu"))
        metrics["masking"]["checklist"] = masking_checklist(metrics)
    return {"checkpoint": str(checkpoint), "arch": config["arch"], "dataset": dataset, "split": "test",
            "recipe": config.get("recipe", {}).get("name"), "reference": str(reference), **metrics}
