"""``zoo eval``: evaluate a checkpoint on a real test set, with ε_ref taken from (or stored with) its reference
(:mod:`ddzoo.eval.eps_ref`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ddzoo.attacks import attack_copy
from ddzoo.data import get_dataset_info, load_split
from ddzoo.device import pick_device
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.eps_ref import reference_of, resolve_eps_ref
from ddzoo.eval.robustness import EvalSettings, evaluate_robustness
from ddzoo.package import load_checkpoint


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
    eps_ref, _ = resolve_eps_ref(checkpoint, x, y, reference=reference, settings=settings, device=dev, store=True)
    reference = Path(reference) if reference else reference_of(checkpoint, config)
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
