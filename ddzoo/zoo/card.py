"""The model card (``README.md``): Hub metadata with a ``model-index`` built from ``verification.json``.

Made with huggingface_hub's ``ModelCard`` / ``ModelCardData``, so the Hub renders the metrics; every number
in the metadata is the verification record's value, unrounded.
"""

from __future__ import annotations

from pathlib import Path

from ddzoo.data import get_dataset_info
from ddzoo.eval.threat import NORMS, ThreatModel, figure_label
from ddzoo.package import WEIGHTS
from ddzoo.printing import markdown_table
from ddzoo.records import HEADLINE_ITERATIONS, parse_records
from ddzoo.stats import Accuracy, PairedDrop
from ddzoo.verification import table_row
from ddzoo.zoo.hubs import import_hub

LICENSE = "apache-2.0"
ROBUST_COLUMN = "robust (declared threat models)"  # shown in the comparison when a model in it declares one

DEFENCES = {  # recipe name → what the defence is, in one sentence for the card
    "reference": "plain cross-entropy training, no defence: the model the defences are measured against.",
    "deep-defense": "Deep Defense (Yan, Guo, Zhang, NeurIPS 2018): fine-tuning with a regulariser on the norm of "
                    "each image's DeepFool perturbation, the attack unrolled and differentiated, added to the "
                    "cross-entropy.",
    "adversarial": "adversarial training (Madry et al., ICLR 2018; the FGS variant: Goodfellow et al., ICLR 2015): "
                   "training on the worst examples an attack finds in an ε-ball around each image (norm, ε and "
                   "steps in the recipe table).",
    "parseval": "Parseval networks (Cissé et al., ICML 2017): after every step each weight matrix is retracted "
                "towards a Parseval tight frame, bounding each layer's Lipschitz constant (β in the recipe table).",
}


def eval_results(config: dict, verification: dict) -> list:
    """One accuracy and one ρ₂ result per verified artifact (metric_config = the artifact's file name)."""
    hub = import_hub()
    dataset = get_dataset_info(config["dataset"])
    results = []
    for name, record in parse_records(verification).items():
        common = {"task_type": "image-classification", "dataset_type": config["dataset"],
                  "dataset_name": dataset.name, "dataset_split": "test", "metric_config": name,
                  "metric_args": {"precision": record.precision, "backend": record.runtime["backend"],
                                  "images": record.clean.images, "sha256": record.sha256}}
        results.append(hub.EvalResult(metric_type="accuracy", metric_name=f"accuracy ({name})",
                                      metric_value=record.clean.accuracy, **common))
        if record.headline_rho2 is not None:
            results.append(hub.EvalResult(metric_type="rho2",
                                          metric_name=f"DeepFool rho2, {HEADLINE_ITERATIONS} it ({name})",
                                          metric_value=record.headline_rho2, **common))
        square = record.square_accuracy
        if square:  # the query-only attack on the artifact itself, on its own (smaller) sample
            label = ThreatModel("Linf", record.square["eps"]).label("Square", square.images)
            results.append(hub.EvalResult(metric_type="robust_accuracy", metric_name=f"{label} ({name})",
                                          metric_value=square.accuracy,
                                          **{**common, "metric_args": {**common["metric_args"],
                                                                        "images": square.images}}))
        for figure in (record.robust or {}).values():  # per declared threat model, on its own sample
            for measured in (figure, figure.get("square")):
                if measured:
                    results.append(hub.EvalResult(
                        metric_type="robust_accuracy", metric_value=measured["accuracy"],
                        metric_name=f"{measured['label']} ({name})",
                        **{**common, "metric_args": {**common["metric_args"], "images": measured["images"]}}))
        if record.strong:  # white-box attacks on the checkpoint, on their own sample
            strong = record.strong
            on_sample = {**common, "metric_args": {**common["metric_args"], "images": strong["images"]}}
            results.append(hub.EvalResult(
                metric_type="rho2", metric_value=strong["best_of"]["rho2"], **on_sample,
                metric_name=f"best-of minimum-norm rho2, {'+'.join(strong['best_of']['attacks'])} ({name})"))
            for norm, result in (strong.get("autoattack") or {}).items():
                if isinstance(result, dict):
                    results.append(hub.EvalResult(
                        metric_type="robust_accuracy", metric_value=result["accuracy"], **on_sample,
                        metric_name=f"{figure_label('AutoAttack', norm, result)} ({name})"))
    return results


def _strong(verification: dict) -> str:
    """The checkpoint's stronger-attack record as card text (empty without one)."""
    checkpoint = parse_records(verification).get(WEIGHTS)
    strong = checkpoint.strong if checkpoint else None
    if not strong:
        return ""
    best, deepfool = strong["best_of"], strong["min_norm"].get("deepfool")
    lines = ["", "## Stronger attacks (the checkpoint, white-box)", "",
             f"On the first {strong['images']} test images: the smallest l2 perturbation that changes the label, "
             f"per image the best of {', '.join(best['attacks'])} (foolbox {strong['steps']} steps), and "
             "AutoAttack robust accuracy (torchattacks, standard version) at this dataset's standard budgets.", "",
             "| metric | value |", "|---|---|",
             f"| best-of ρ₂ (mean / median) | {best['rho2']:.4f} / {best['median_rho2']:.4f} |",
             f"| best-of mean ‖r‖₂ | {best['mean_norm']:.4f} (success {100 * best['success']:.1f} %) |"]
    if deepfool:
        lines.append(f"| DeepFool mean ‖r‖₂ / best-of | {deepfool['mean_norm'] / best['mean_norm']:.2f} |")
    for norm, result in (strong.get("autoattack") or {}).items():
        if isinstance(result, dict):
            lines.append(f"| {figure_label('AutoAttack', norm, result)} | {Accuracy.from_json(result).text()} |")
    return "\n".join([*lines, ""])



def _robust(verification: dict) -> str:
    """Robust accuracy per declared threat model, per artifact, paired with the checkpoint (empty without)."""
    records = parse_records(verification)
    rows = [(name, figure) for name, record in records.items() for figure in (record.robust or {}).values()]
    if not rows:
        return ""

    def cell(figure: dict | None) -> tuple[str, str]:
        if not figure:
            return "-", "-"
        drop = figure.get("robust_drop")
        return Accuracy.from_json(figure).text(), PairedDrop.from_json(drop).change_text() if drop else "-"

    lines = ["", "## Robust accuracy per threat model (as deployed)", "",
             "Standard AutoAttack on the checkpoint; on every artifact, the checkpoint's adversarial examples "
             "replayed on the artifact's own bytes (a transfer attack: an upper bound), the query-only Square attack "
             "run on the artifact alone at the same budget, and per image the worse of the two. Changes are paired "
             "with the checkpoint image by image (95 % interval); the gate fails an artifact whose robust accuracy "
             "is significantly below the checkpoint's (exact one-sided McNemar test, p < 0.025).", ""]
    cells = [[name, f"{NORMS.get(figure['norm'], figure['norm'])} "
              f"{ThreatModel(figure['norm'], figure['eps']).eps_text}",
              *cell(figure), *cell(figure.get("square")), *cell(figure.get("combined"))] for name, figure in rows]
    header = ["artifact", "threat model", "AutoAttack", "change", "Square", "change", "worse of both", "change"]
    return "\n".join([*lines, markdown_table(cells, header), ""])


def checkpoint_facts(verification: dict) -> dict[str, str]:
    """The checkpoint record's headline numbers as table cells (the comparison table's columns)."""
    record = parse_records(verification).get(WEIGHTS)
    strong = (record.strong if record else None) or {}
    attacks = strong.get("autoattack") or {}
    rho2 = record.headline_rho2 if record else None
    return {"accuracy": record.clean.text() if record else "-",
            "DeepFool ρ₂": f"{rho2:.4f} (n = {record.clean.images:,})" if rho2 is not None else "-",
            "best-of ρ₂": f"{strong['best_of']['rho2']:.4f} (n = {int(strong['images']):,})" if strong else "-",
            **{f"AutoAttack {NORMS[norm]} (dataset's ε)": f"{100 * attacks[norm]['accuracy']:.1f} % "
               f"({ThreatModel(norm, float(attacks[norm]['eps'])).eps_text}, n = {int(attacks[norm]['images']):,})"
               if isinstance(attacks.get(norm), dict) else "-" for norm in ("Linf", "L2")},
            ROBUST_COLUMN: "; ".join(
                f"{100 * f['accuracy']:.1f} % ({f['label']})" for f in ((record.robust if record else None) or {}
                                                                       ).values()) or "-"}


def _comparison(name: str, config: dict, verification: dict, peers: list[tuple[str, dict, dict]]) -> str:
    """How this model compares with ``peers`` (name, config, verification) on the same test images."""
    if not peers:
        return ""
    rows = [(name, config, verification), *peers]
    facts = [checkpoint_facts(v) for _, _, v in rows]
    columns = [c for c in facts[0] if c != ROBUST_COLUMN or any(f[c] != "-" for f in facts)]
    lines = ["", "## How it compares", "",
             f"The checkpoints of this model and its neighbours in the zoo, measured by the same `zoo verify` on "
             f"{config['dataset']}'s test images, n in each cell (white-box, in PyTorch):", ""]
    cells = [[f"**{peer}**" if peer == name else peer, peer_config.get("recipe", {}).get("name", "reference"),
              *(peer_facts[c] for c in columns)]
             for (peer, peer_config, _), peer_facts in zip(rows, facts, strict=True)]
    return "\n".join([*lines, markdown_table(cells, ["model", "defence", *columns]), ""])


def _budgets(verification: dict) -> str:
    """The budgets of the table's FGS / BIM and Square columns, from the checkpoint's record, as a sentence after a
    space (empty without)."""
    record = parse_records(verification).get(WEIGHTS)
    if record is None or not record.fgs or not record.bim:
        return ""
    steps = record.extra.get("settings", {}).get("bim_steps")
    text = (f" Budgets, ℓ∞ in [0, 1] pixels: FGS at ε_ref = {record.fgs['eps'][-1]:.4g} and BIM"
            f"{f' ({steps} steps)' if steps else ''} at ε_ref = {record.bim['eps'][-1]:.4g} on the same "
            f"{record.clean.images:,} images (ε_ref: where the family's reference model falls to 50 % accuracy under "
            "that attack)")
    square = record.square_accuracy
    if square:
        text += (f"; Square at ε = {record.square['eps']:.4g} with {int(record.square['queries']):,} queries on the "
                 f"first {square.images:,}")
    return text + "."


def _table(verification: dict) -> str:
    rows = [table_row(r) for r in parse_records(verification).values()]
    return markdown_table(rows) if rows else "(no verification records)"


def _training(config: dict) -> str:
    """The training run as recorded in the checkpoint: where, how long, and the accuracy it ended with."""
    metrics = config.get("metrics", {})
    rows = {"test accuracy at the end of training": f"{100 * metrics['test_accuracy']:.2f} %"
            if "test_accuracy" in metrics else None,
            "training time": f"{metrics['train_seconds']:,.0f} s" if "train_seconds" in metrics else None,
            "device": f"{metrics['device']} ({metrics.get('world_size', 1)} process(es))" if "device" in metrics
            else None,
            "machine": metrics.get("machine"),
            "held-out accuracy, last epoch": f"{100 * metrics['holdout_curve'][-1]:.2f} % (training images past "
                                             "train_limit)" if metrics.get("holdout_curve") else None}
    lines = [f"| {key} | {value} |" for key, value in rows.items() if value is not None]
    return "\n".join(["", "| run | value |", "|---|---|", *lines, ""]) if lines else ""


def make_card(package: Path, name: str, config: dict, verification: dict, unverified: list[str],
              peers: list[tuple[str, dict, dict]] = ()) -> str:
    """The card's full text for package ``name``; ``peers`` (name, config, verification) of other packages on the
    same dataset make its comparison table."""
    hub = import_hub()
    recipe = config.get("recipe", {})
    defence = recipe.get("name", "reference")
    data = hub.ModelCardData(
        license=LICENSE, library_name="ddzoo", pipeline_tag="image-classification", model_name=name,
        datasets=[config["dataset"]], metrics=["accuracy", "rho2"],
        tags=["adversarial-robustness", defence,
              "deepfool", "onnx", *sorted({r.precision for r in parse_records(verification).values()}
                                          & {"fp16", "int8"}),
              "image-classification", config["arch"], config["dataset"]],
        eval_results=eval_results(config, verification) or None)
    hyper = "\n".join(f"| {k} | {v} |" for k, v in recipe.items() if k not in ("init",))
    warning = ("\n> **Unverified artifacts:** " + ", ".join(f"`{u}`" for u in unverified) +
               " were published with `--allow-unverified`: no passing robustness verification for their bytes.\n"
               if unverified else "")
    samples = next((r.clean.images for r in parse_records(verification).values()), 0)
    body = f"""
# {name}

A `{config['arch']}` classifier for {config['dataset']} from the [ddzoo](https://github.com/ddzoo) model zoo,
trained with the **{defence}** recipe: {DEFENCES.get(defence, "see the recipe table.")} Inputs are float32
NCHW pixels in [0, 1]; the normalisation is inside every artifact.
{warning}
## Robustness as deployed

Every artifact was attacked with DeepFool *with the artifact itself in the loop* (its own logits for every
step and success check, bisection to its own decision boundary) on {samples:,} test images. ρ₂ is the mean
‖r‖₂/‖x‖₂ in [0, 1] pixel space, unconstrained; the ratio compares with the checkpoint attacked the same way.
The Square column is a query-only attack on the artifact's own scores (no gradients from anywhere). A Square
figure above the checkpoint's, as INT8's often are, is no sign of a more robust artifact: quantised scores stall
Square's random search, so DeepFool's ρ₂, guided by gradients, is the yardstick and the gate holds Square only
against a drop. An artifact is published only when its gate passed: the paired accuracy drop against the
checkpoint is at most 0.5 point at the upper end of its 95 % interval, its ρ₂ at least 95 % of the checkpoint's,
and its Square accuracy not significantly more than 2 points below the checkpoint's.{_budgets(verification)}

{_table(verification)}
{_robust(verification)}{_strong(verification)}{_comparison(name, config, verification, list(peers))}
## Use

```bash
zoo pull {name}                 # into the cache, checked against manifest.json
zoo verify $(zoo pull {name})   # re-run the robustness verification here
zoo serve {name}                # KServe v2 HTTP inference (onnxruntime or TensorRT)
```

## Training recipe

| hyperparameter | value |
|---|---|
{hyper}
{_training(config)}"""
    return hub.ModelCard(f"---\n{data.to_yaml()}\n---\n{body}").content
