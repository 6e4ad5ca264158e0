"""The verification plot: per-image ‖r‖/‖x‖ histograms (checkpoint vs artifacts) and accuracy-vs-ε curves."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ddzoo.fileio import atomic_write_bytes
from ddzoo.optional import require


def plot_verification(verification: dict, rhos: dict[str, torch.Tensor], path: Path) -> Path:
    """Write a PNG with one ρ₂ histogram panel and one accuracy-vs-ε panel per l∞ attack."""
    matplotlib = require("matplotlib", "verification plots", extra="report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    records = verification["records"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    top = max(r.max().item() for r in rhos.values())
    bins = torch.linspace(0, top, 50).numpy()
    for name, rho in rhos.items():
        axes[0].hist(rho.numpy(), bins=bins, histtype="step", linewidth=1.5,
                     label=f"{name} (ρ₂ {rho.mean().item():.4f})")
    axes[0].set(xlabel="‖r‖₂ / ‖x‖₂ (DeepFool, fooling the artifact)", ylabel="images",
                title="Per-image robustness")
    axes[0].legend(fontsize=8)
    for ax, attack in zip(axes[1:], ("fgs", "bim"), strict=True):
        for name in rhos:
            record = records[name]
            eps = [0.0, *record[attack]["eps"]]
            accuracy = [record["clean_accuracy"], *record[attack]["accuracy"]]
            ax.plot(eps, [100 * a for a in accuracy], marker="o", label=name)
        ax.set(xlabel="ε (l∞, [0,1] pixels)", ylabel="accuracy (%)", title=f"{attack.upper()} accuracy vs ε",
               ylim=(0, 100))
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
