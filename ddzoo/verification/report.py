"""Verification records as people read them: the formatted cells of a table row."""

from __future__ import annotations

from ddzoo.records import BOX_CONSTRAINED, ArtifactRecord
from ddzoo.stats import percent


def table_row(record: ArtifactRecord) -> dict[str, str]:
    """One verification record as the formatted cells of a table row (CLI tables, model cards, the site)."""
    runtime, box, cross = record.runtime, record.deepfool[BOX_CONSTRAINED], record.crosscheck
    square = record.square_accuracy
    return {"artifact": record.artifact, "runtime": f"{runtime['backend']} {runtime['runtime_version']}",
            "precision": record.precision, "accuracy": record.clean.text(digits=2),
            "Δ accuracy vs checkpoint": record.accuracy_drop.change_text() if record.accuracy_drop else "-",
            "top-1 agreement": percent(record.top1_agreement),
            **{f"ρ₂ {it} it": f"{run.rho2:.4f}" for it, run in record.budgets.items()},
            "ρ₂ ratio": f"{record.rho2_ratio:.3f}",
            "box-constrained ρ₂ (fooled)": f"{box.rho2_fooled:.4f} ({percent(box.fooled, 1)})",
            "FGS / BIM at ε_ref": " / ".join(percent(grid["accuracy"][-1], 1) for grid in (record.fgs, record.bim)),
            "cross-check Δ": f"{cross['relative_difference']:.3f}" if cross else "-",
            "Square acc. at ε_ref": square.text() if square else "-",
            "gate": "pass" if record.gate.passed else "FAIL"}
