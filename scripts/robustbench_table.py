"""The RobustBench-style table of docs/results (issue 27): the zoo's models beside RobustBench's anchors.

Reads ``zoo eval --autoattack --json`` outputs (their ``robustbench`` entries) or model packages (clean accuracy
from config.json, AutoAttack from the checkpoint record's ``strong`` figures of ``zoo verify --strong``) and prints
markdown rows in RobustBench's columns: clean accuracy (whole test set), AutoAttack robust accuracy (with n and its
Wilson interval), architecture, parameters, and training cost in CPU-hours (wall hours × the machine's cores,
minus any pauses given as ``NAME=SECONDS``; a fine-tune's own training only).

    python scripts/robustbench_table.py runs/robust/NAME.eval.json ... ddzoo/hub/resnet-cifar10-ref/main ... \
        [--paused resnet-cifar10-at-linf=4290]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ddzoo.eval.anchors import robustbench_anchors
from ddzoo.eval.threat import NORMS, ThreatModel
from ddzoo.stats import Accuracy


def _budget(threat: ThreatModel) -> str:
    return f"{NORMS[threat.norm]} {threat.eps_text}"


def _package_entry(folder: Path) -> tuple[dict, str]:
    """A package's figures in the shape of ``zoo eval``'s robustbench entry."""
    from ddzoo.package import load_checkpoint, read_config, read_verification

    config = read_config(folder)
    strong = read_verification(folder)["records"]["model.safetensors"].get("strong") or {}
    robust = {norm: {"norm": norm, **figure} for norm, figure in (strong.get("autoattack") or {}).items()
              if isinstance(figure, dict)}
    model, _ = load_checkpoint(folder)
    return {"architecture": config["arch"], "parameters": sum(p.numel() for p in model.parameters()),
            "clean": {"accuracy": config["metrics"]["test_accuracy"]}, "robust": robust,
            "training": {"wall_seconds": config["metrics"].get("train_seconds")}}, folder.parent.name


def _ours(path: Path, paused: dict[str, float], cores: int) -> list[str]:
    if path.is_dir():
        entry, name = _package_entry(path)
    else:
        record = json.loads(path.read_text())
        entry, name = record["robustbench"], Path(record["checkpoint"]).name
    seconds = entry["training"]["wall_seconds"]
    hours = "-" if seconds is None else f"{(seconds - paused.get(name, 0.0)) * cores / 3600:.1f}"
    rows = []
    for figure in entry["robust"].values():
        accuracy = Accuracy.from_json(figure)
        rows.append(f"| **{name}** (ours) | {entry['architecture']} | {entry['parameters'] / 1e6:.2f} M | "
                    f"{_budget(ThreatModel(figure['norm'], figure['eps']))} | "
                    f"{100 * entry['clean']['accuracy']:.2f} % | {accuracy.text()} | {hours} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="*", type=Path)
    parser.add_argument("--paused", nargs="*", default=[], help="NAME=SECONDS of pauses inside train_seconds")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores of the training machine")
    args = parser.parse_args()
    paused = {k: float(v) for k, v in (p.split("=", 1) for p in args.paused)}
    print("| model | architecture | parameters | threat model | clean | AutoAttack | training, CPU-hours |")
    print("|---|---|---:|---|---:|---:|---:|")
    for path in args.evaluations:
        print("\n".join(_ours(path, paused, args.cores)))
    for anchor in robustbench_anchors("cifar10"):
        params = "-" if anchor.parameters_millions is None else f"{anchor.parameters_millions:g} M"
        print(f"| {anchor.citation} ({anchor.model_id}) | {anchor.architecture} | {params} | "
              f"{_budget(ThreatModel(anchor.norm, anchor.eps))} | {100 * anchor.clean_accuracy:.2f} % | "
              f"{100 * anchor.autoattack_accuracy:.2f} % (n = {anchor.images:,}) | - |")


if __name__ == "__main__":
    main()
