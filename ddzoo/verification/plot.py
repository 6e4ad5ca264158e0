"""The verification plot: per-image ‖r‖/‖x‖ histograms (checkpoint vs artifacts), accuracy against the l2
budget, and l∞ accuracy-vs-ε curves."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ddzoo.fileio import atomic_write_bytes
from ddzoo.optional import require
from ddzoo.records import parse_records


def plot_verification(verification: dict, rhos: dict[str, torch.Tensor], path: Path,
                      robust_norms: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a PNG with a ρ₂ histogram panel, an accuracy-vs-l2-budget panel (from ``robust_norms``: per image
    the ‖r‖₂ that fools the artifact, 0 where it is misclassified already) and one accuracy-vs-ε panel per
    l∞ attack."""
    plt = _pyplot()

    from ddzoo.eval.strong import robust_accuracy_curve

    records = parse_records(verification)
    fig, axes = plt.subplots(1, 4 if robust_norms else 3, figsize=(21 if robust_norms else 16, 4.5))
    if robust_norms:
        ax = axes[-1]
        top = max(float(norms.quantile(0.98)) for norms in robust_norms.values())
        budgets = torch.linspace(0, top, 60).tolist()
        for name, norms in robust_norms.items():
            ax.plot(budgets, [100 * a for a in robust_accuracy_curve(norms, budgets)], label=name)
        ax.set(xlabel="ε (l2, [0,1] pixels)", ylabel="accuracy (%)", ylim=(0, 100),
               title="Accuracy against the l2 budget (DeepFool on the artifact)")
        ax.legend(fontsize=8)
    top = max(r.max().item() for r in rhos.values())
    bins = torch.linspace(0, top, 50).numpy()
    for name, rho in rhos.items():
        axes[0].hist(rho.numpy(), bins=bins, histtype="step", linewidth=1.5,
                     label=f"{name} (ρ₂ {rho.mean().item():.4f})")
    axes[0].set(xlabel="‖r‖₂ / ‖x‖₂ (DeepFool, fooling the artifact)", ylabel="images",
                title="Per-image robustness")
    axes[0].legend(fontsize=8)
    for ax, attack in zip(axes[1:3], ("fgs", "bim"), strict=True):
        for name in rhos:
            grid = getattr(records[name], attack)
            eps = [0.0, *grid["eps"]]
            accuracy = [records[name].clean.accuracy, *grid["accuracy"]]
            ax.plot(eps, [100 * a for a in accuracy], marker="o", label=name)
        ax.set(xlabel="ε (l∞, [0,1] pixels)", ylabel="accuracy (%)", title=f"{attack.upper()} accuracy vs ε",
               ylim=(0, 100))
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_query_only(record: dict, norms: dict[str, torch.Tensor], path: Path) -> Path:
    """Write a PNG for a foreign model's record: per-image ‖r‖₂ by method, and accuracy against the l2 budget
    (the share of images whose perturbation is larger than ε; 0 for those already misclassified)."""
    plt = _pyplot()

    from ddzoo.eval.strong import robust_accuracy_curve

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    finite = [n[torch.isfinite(n)] for n in norms.values()]
    top = max((float(n.quantile(0.98)) for n in finite if n.numel()), default=1.0)
    bins = torch.linspace(0, top, 40).numpy()
    budgets = torch.linspace(0, top, 60).tolist()
    for name, values in norms.items():
        axes[0].hist(values[torch.isfinite(values)].numpy(), bins=bins, histtype="step", linewidth=1.5, label=name)
        axes[1].plot(budgets, [100 * a for a in robust_accuracy_curve(values, budgets)], label=name)
    axes[0].set(xlabel="‖r‖₂ ([0,1] pixels)", ylabel="images", title=f"{record['artifact']}: per-image perturbation")
    axes[1].set(xlabel="ε (l2, [0,1] pixels)", ylabel="accuracy (%)", ylim=(0, 100),
                title="Accuracy against the l2 budget")
    for ax in axes:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_l2_budget_pairs(evaluations: list[dict], path: Path) -> Path:
    """Write a PNG with one panel per dataset: accuracy against the l2 budget ε (the share of images whose
    best-of minimal perturbation is larger than ε) for each evaluated model, reference and Deep Defense
    together, with AutoAttack's ℓ2 robust accuracy at the standard ε as a point. ``evaluations`` are
    ``zoo eval --attacks ... --autoattack --json`` records."""
    plt = _pyplot()
    datasets = sorted({e["dataset"] for e in evaluations})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for evaluation in (e for e in evaluations if e["dataset"] == dataset):
            strong, name = evaluation["strong"], Path(evaluation["checkpoint"]).name
            curve = strong["l2_curve"]
            line, = ax.plot(curve["eps"], [100 * a for a in curve["accuracy"]], marker=".",
                            label=f"{name} (best-of ρ₂ {strong['best_of']['rho2']:.4f})")
            legacy = (strong.get("autoattack") or {}).get("L2")  # records before per-threat-model figures
            l2s = [r for r in (evaluation.get("robust") or {}).values() if r["norm"] == "L2"]
            for l2 in l2s or ([legacy] if legacy else []):
                ax.errorbar([l2["eps"]], [100 * l2["accuracy"]], color=line.get_color(), marker="s",
                            yerr=[[100 * (l2["accuracy"] - l2["ci95"][0])], [100 * (l2["ci95"][1] - l2["accuracy"])]])
        ax.set(xlabel="ε (l2, [0,1] pixels)", ylabel="accuracy (%)", ylim=(0, 100),
               title=f"{dataset}: best-of l2 budget curve (■ AutoAttack)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (the ``report`` extra)."""
    matplotlib = require("matplotlib", "verification plots", extra="report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (temp file, then rename) and close it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
