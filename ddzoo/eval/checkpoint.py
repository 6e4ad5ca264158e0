"""``zoo eval``: evaluate a checkpoint on a real test set, with ε_ref taken from (or stored with) its reference
(:mod:`ddzoo.eval.eps_ref`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ddzoo.attacks import attack_copy
from ddzoo.data import get_dataset_info, load_split
from ddzoo.device import pick_device
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.autoattack import FIGURE_FIELDS
from ddzoo.eval.autoattack import autoattack as autoattack_run
from ddzoo.eval.eps_ref import reference_of, resolve_eps_ref
from ddzoo.eval.robustness import EvalSettings, evaluate_robustness
from ddzoo.eval.threat import ThreatModel, declared_threat_models, standard_threat_models
from ddzoo.models.inference import predict_labels
from ddzoo.package import load_checkpoint
from ddzoo.stats import Accuracy


def evaluate_checkpoint(checkpoint: Path | str, *, dataset: str | None = None, limit: int | None = None,
                        reference: Path | str | None = None, settings: EvalSettings | None = None,
                        device: str | None = None, attacks: tuple[str, ...] = (), autoattack: bool = False,
                        strong_limit: int | None = None, budgets: list[ThreatModel] | None = None,
                        adversarials: Path | str | None = None, trust_adversarials: bool = False) -> dict:
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
        autoattack: also AutoAttack robust accuracy at ``budgets``: by default the threat models the checkpoint
            declares (:mod:`ddzoo.eval.threat`), else the dataset's standard budgets; and a RobustBench-style
            entry (``robustbench``: clean accuracy on the whole test set, robust accuracy per budget,
            architecture, parameters, training time).
        strong_limit: run the stronger attacks on the first N of the evaluated images only (they are slow).
        budgets: the AutoAttack threat models (see ``autoattack``).
        adversarials: where AutoAttack's adversarial examples are stored batch by batch (default: the zoo
            cache's): a stopped run resumes there, and ``zoo verify`` replays them on the deployed artifacts;
            ``trust_adversarials``: also batches this cache did not sign (:mod:`ddzoo.eval.autoattack`).

    Returns:
        the metrics of :func:`evaluate_robustness` plus ``checkpoint``, ``dataset`` and ``reference``, and
        ``strong`` and ``masking`` (the gradient-masking checklist, :mod:`ddzoo.eval.masking`) when asked;
        with ``autoattack``, ``robust`` (per threat model key, :meth:`ThreatModel.key`) and ``robustbench``.
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
        metrics["strong"] = strong_record(model.cpu(), x[:n], y[:n], dataset, attacks=attacks or ("deepfool",))
        declared = declared_threat_models(config)
        metrics["masking"] = masking_measurements(attack_copy(model).cpu(), x[:n], y[:n], eps_ref, settings=settings,
                                                  device=torch.device("cpu"), declared=(declared or [None])[0])
        metrics["masking"]["checklist"] = masking_checklist(metrics)
    if autoattack:
        threats = budgets or declared_threat_models(config) or standard_threat_models(dataset)
        n = strong_limit or len(x)
        metrics["robust"] = {t.key: autoattack_run(model.cpu(), x[:n], y[:n], t, store=adversarials,
                                                   trust=trust_adversarials).record() for t in threats}
        metrics["robustbench"] = robustbench_entry(model, config, dataset, metrics["robust"])
    return {"checkpoint": str(checkpoint), "arch": config["arch"], "dataset": dataset, "split": "test",
            "recipe": config.get("recipe", {}).get("name"), "reference": str(reference), **metrics}


def robustbench_entry(model: torch.nn.Module, config: dict, dataset: str, robust: dict[str, dict]) -> dict:
    """What a RobustBench-style table row needs: clean accuracy on the whole test set (whatever ``--limit``),
    AutoAttack robust accuracy per threat model with its n, architecture, parameters and training time."""
    x, y = load_split(dataset, "test").tensors()
    correct = predict_labels(model.cpu().eval(), x) == y
    metrics = config.get("metrics") or {}
    seconds = metrics.get("train_seconds")
    return {"clean": Accuracy.of(correct).to_json(),
            "robust": {key: {k: r[k] for k in ("norm", "eps", *FIGURE_FIELDS)} for key, r in robust.items()},
            "architecture": config["arch"], "parameters": sum(p.numel() for p in model.parameters()),
            "training": {"recipe": (config.get("recipe") or {}).get("name"), "wall_seconds": seconds,
                         "machine": metrics.get("machine"),
                         "note": "wall-clock seconds as the trainer recorded them (with any pauses)"}}
