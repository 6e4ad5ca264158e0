"""The model pages' figures, drawn by matplotlib from the verification records as SVG.

Deterministic: the SVG carries no date and its element ids come from a fixed hash salt, so the same records
give the same bytes. Every number comes from :class:`~ddzoo.site.entries.ModelEntry` (already checked).
"""

from __future__ import annotations

import io
from typing import Any

from ddzoo.optional import require
from ddzoo.site.entries import ModelEntry, as_dict, as_number

_STYLE = {"svg.hashsalt": "ddzoo-site", "svg.fonttype": "path", "text.parse_math": False,  # "$" is not TeX here
          "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 72, "savefig.facecolor": "white",
          "axes.spines.top": False, "axes.spines.right": False}
MAX_FAMILY = 8  # lines besides the model itself in a family panel
MAX_ROWS = 16  # artifacts drawn at most (a crafted record may list thousands)


def _pyplot():
    matplotlib = require("matplotlib", "the site's plots", extra="site")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _curve(record: Any, key: str) -> tuple[list[float], list[float]] | None:
    """``record[key]`` as (ε, accuracy) lists of equal length, or None."""
    curve = as_dict(as_dict(record).get(key))
    eps, accuracy = curve.get("eps"), curve.get("accuracy")
    if not isinstance(eps, list) or not isinstance(accuracy, list) or len(eps) != len(accuracy):
        return None
    pairs = [(as_number(e), as_number(a)) for e, a in zip(eps, accuracy, strict=True)]
    pairs = [(e, a) for e, a in pairs if e is not None and a is not None]
    return ([e for e, _ in pairs], [a for _, a in pairs]) if pairs else None


def budget_plot(entry: ModelEntry, family: list[ModelEntry]) -> bytes:
    """Accuracy against the l2 budget (best-of minimal perturbations) and against the l∞ ε (BIM), for the
    model (thick) and the other models of its dataset, with AutoAttack's robust accuracy as points."""
    plt = _pyplot()
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        others = [e for e in family if e.slug != entry.slug][:MAX_FAMILY]
        for model in [entry, *others]:
            checkpoint = model.records.get("model.safetensors", {})
            mine = model.slug == entry.slug
            style = {"linewidth": 2.4 if mine else 1.0, "alpha": 1.0 if mine else 0.75, "label": model.name,
                     "zorder": 3 if mine else 2}
            for ax, curve, norm in ((axes[0], _curve(as_dict(checkpoint).get("strong"), "l2_curve"), "L2"),
                                    (axes[1], _curve(checkpoint, "bim"), "Linf")):
                line = None
                if curve and norm == "Linf":  # a log axis: the BIM grid sits far below the standard budget
                    curve = ([e for e in curve[0] if e > 0], [a for e, a in zip(*curve, strict=True) if e > 0])
                if curve and curve[0]:
                    eps, accuracy = curve
                    line, = ax.plot(eps, [100 * a for a in accuracy], marker="." if mine else None, **style)
                for threat, figure in model.robust.items():
                    if threat.norm == norm and (norm != "Linf" or threat.eps > 0):
                        ax.plot([threat.eps], [100 * figure.value], marker="s", linestyle="none",
                                markersize=7 if mine else 4, color=line.get_color() if line else None,
                                zorder=style["zorder"])
        axes[0].set(xlabel="ε (ℓ2, [0,1] pixels)", ylabel="accuracy (%)", ylim=(-2, 102),
                    title="Against the ℓ2 budget: best-of minimal ‖r‖₂ (■ AutoAttack)")
        axes[1].set(xlabel="ε (ℓ∞, [0,1] pixels, log scale)", ylabel="accuracy (%)", ylim=(-2, 102),
                    title="Against the ℓ∞ budget: BIM (■ AutoAttack)")
        if axes[1].lines:
            axes[1].set_xscale("log")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.tight_layout()
        return _svg(fig)


def rho_plot(entry: ModelEntry) -> bytes:
    """DeepFool ρ₂ of the checkpoint and every verified artifact, at each recorded iteration budget and
    box-constrained (one row per artifact, so their differences show)."""
    plt = _pyplot()
    names = list(entry.records)[:MAX_ROWS]
    markers = {"box-constrained": "s"}
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(10, 1.3 + 0.42 * max(len(names), 1)))
        series: dict[str, list[tuple[float, int]]] = {}
        for y, name in enumerate(names):
            for key, value in as_dict(entry.records[name].get("deepfool")).items():
                rho = as_number(as_dict(value).get("rho2"))
                label = f"{key} iterations" if str(key).isdigit() else "box-constrained"
                if rho is not None:
                    series.setdefault(label, []).append((rho, y))
        for i, label in enumerate(sorted(series, key=lambda s: (not s[0].isdigit(), len(s), s))):
            points = series[label]
            ax.plot([p[0] for p in points], [p[1] for p in points], linestyle="none", label=label,
                    marker=markers.get(label, "o^v<>"[i % 5]), markersize=7, alpha=0.85)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set(xlabel="ρ₂ = mean ‖r‖₂ / ‖x‖₂ (DeepFool against each artifact)", title="ρ₂ per artifact")
        if series:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        fig.tight_layout()
        return _svg(fig)


def pairing_plot(entry: ModelEntry) -> bytes:
    """Each artifact against the checkpoint on the same images: the paired accuracy change with its 95 %
    interval, and the ρ₂ ratio, each beside the gate's threshold."""
    plt = _pyplot()
    rows = []
    for name, record in list(entry.records.items())[:MAX_ROWS]:
        paired, gate = as_dict(record.get("accuracy_drop")), as_dict(record.get("gate"))
        drop, ratio = as_number(paired.get("drop")), as_number(record.get("rho2_ratio"))
        interval = paired.get("ci95") if isinstance(paired.get("ci95"), list) else []
        low, high = (as_number(v) for v in (interval + [None, None])[:2])
        if drop is not None or name != "model.safetensors":
            rows.append((name, drop, low, high, ratio, as_number(gate.get("max_accuracy_drop")),
                         as_number(gate.get("min_rho_ratio"))))
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.9 + 0.45 * max(len(rows), 1)))
        ys = list(range(len(rows)))
        for y, (_, drop, low, high, ratio, max_drop, min_ratio) in zip(ys, rows, strict=True):
            if drop is not None:
                error = [[100 * (drop - low)], [100 * (high - drop)]] if low is not None and high is not None else None
                axes[0].errorbar([-100 * drop], [y], xerr=error[::-1] if error else None, fmt="o", color="C0",
                                 capsize=3)
            if max_drop is not None:
                axes[0].plot([-100 * max_drop] * 2, [y - 0.4, y + 0.4], color="C3", linewidth=1.5)
            if ratio is not None:
                axes[1].plot([ratio], [y], "o", color="C0")
            if min_ratio is not None:
                axes[1].plot([min_ratio] * 2, [y - 0.4, y + 0.4], color="C3", linewidth=1.5)
        for ax in axes:
            ax.set_yticks(ys, [r[0] for r in rows])
            ax.set_ylim(len(rows) - 0.5, -0.5)
        axes[0].axvline(0, color="grey", linewidth=0.8)
        axes[1].axvline(1, color="grey", linewidth=0.8)
        axes[0].set(xlabel="accuracy change vs the checkpoint (points, 95 % paired interval)",
                    title="Accuracy, paired (| gate: largest drop)")
        axes[1].set(xlabel="ρ₂ of the artifact / ρ₂ of the checkpoint", title="ρ₂ ratio (| gate: smallest ratio)")
        fig.tight_layout()
        return _svg(fig)


PLOTS = {"budget.svg": "Accuracy against the ℓ2 and ℓ∞ budgets, this model and the others of its dataset",
         "rho2.svg": "DeepFool ρ₂ of the checkpoint and of every verified artifact",
         "pairing.svg": "Each artifact against the checkpoint: paired accuracy change and ρ₂ ratio, with the gate"}


def model_plots(entry: ModelEntry, family: list[ModelEntry]) -> dict[str, bytes]:
    """The model page's figures: file name → SVG bytes (keys and captions in :data:`PLOTS`)."""
    return {"budget.svg": budget_plot(entry, family), "rho2.svg": rho_plot(entry), "pairing.svg": pairing_plot(entry)}
