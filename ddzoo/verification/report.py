"""Verification records as people read them: the headline figures and the formatted table row."""

from __future__ import annotations

HEADLINE_ITERATIONS = "50"  # the ρ₂ that cards, listings and served metadata quote


def headline(record: dict | None) -> dict[str, float | None]:
    """A record's clean accuracy and 50-iteration ρ₂ (None where the record, or the artifact's, is missing)."""
    record = record or {}
    return {"clean_accuracy": record.get("clean_accuracy"),
            "rho2": record.get("deepfool", {}).get(HEADLINE_ITERATIONS, {}).get("rho2")}


def summary_row(record: dict) -> dict[str, str]:
    """One verification record as the formatted cells of a table row (CLI tables and model cards)."""
    runtime, deepfool, box = record["runtime"], record["deepfool"], record["deepfool"]["box_constrained"]
    cross = record.get("crosscheck") or {}
    return {"artifact": record["artifact"], "runtime": f"{runtime['backend']} {runtime['runtime_version']}",
            "precision": runtime["precision"], "accuracy": _with_interval(record),
            "Δ accuracy vs checkpoint": _drop(record.get("accuracy_drop")),
            "top-1 agreement": f"{100 * record['top1_agreement']:.2f} %",
            **{f"ρ₂ {it} it": f"{deepfool[it]['rho2']:.4f}" for it in deepfool if it.isdigit()},
            "ρ₂ ratio": f"{record['rho2_ratio']:.3f}",
            "box-constrained ρ₂ (fooled)": f"{box['rho2_fooled']:.4f} ({100 * box['fooled']:.1f} %)",
            "FGS / BIM at ε_ref": f"{100 * record['fgs']['accuracy'][-1]:.1f} % / "
                                  f"{100 * record['bim']['accuracy'][-1]:.1f} %",
            "cross-check Δ": f"{cross['relative_difference']:.3f}" if cross else "-",
            "Square acc. at ε_ref": accuracy_text(record["square"]) if record.get("square") else "-",
            "gate": "pass" if record["gate"]["passed"] else "FAIL"}


def _with_interval(record: dict) -> str:
    """Accuracy with its Wilson 95 % interval and n, as the card states it."""
    text = f"{100 * record['clean_accuracy']:.2f} %"
    if "clean_accuracy_ci95" in record:
        low, high = record["clean_accuracy_ci95"]
        text += f" [{100 * low:.1f}, {100 * high:.1f}] (n={record['images']})"
    return text


def accuracy_text(result: dict) -> str:
    """An accuracy record (``accuracy``, ``ci95``, ``images``) as ``92.5 % [88.0, 95.4] (n=200)``."""
    low, high = result["ci95"]
    return f"{100 * result['accuracy']:.1f} % [{100 * low:.1f}, {100 * high:.1f}] (n={result['images']})"


def _drop(paired: dict | None) -> str:
    if not paired:
        return "-"
    low, high = paired["ci95"]
    change, lowest, highest = (round(-100 * v, 2) + 0.0 for v in (paired["drop"], high, low))  # no "-0.00"
    return f"{change:+.2f} pt [{lowest:+.2f}, {highest:+.2f}]"
