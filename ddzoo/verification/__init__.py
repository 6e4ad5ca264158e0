"""``zoo verify``: robustness measured on the exact bytes that will be deployed.

For every artifact of a model package, DeepFool runs with the artifact in the loop (see
:mod:`ddzoo.verification.attack`); the checkpoint is attacked by the very same procedure, so the ratio of the two
ρ₂ isolates what export and quantisation did to robustness. Each record in ``verification.json`` is tied to
the artifact's sha256 and stops counting once the bytes change; a gate (accuracy drop, ρ₂ ratio) decides
pass or fail, and ``zoo publish`` refuses artifacts without a passing record for their current bytes.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ddzoo.attacks.deepfool import l2_norms
from ddzoo.data import load_split
from ddzoo.errors import InvalidArgumentError, VerificationFailedError
from ddzoo.eval.robustness import (
    LINF_ATTACKS,
    EvalSettings,
    accuracy_fields,
    chunks,
    find_eps_ref,
    linf_grid,
    summarize,
)
from ddzoo.fileio import sha256_file
from ddzoo.models.inference import predict
from ddzoo.package import (
    WEIGHTS,
    package_artifacts,
    package_versions,
    read_config,
    read_eps_ref,
    read_verification,
    verification_status,
    write_verification,
)
from ddzoo.runtime import Runner, open_runner
from ddzoo.verification.attack import (
    ArtifactAttack,
    artifact_deepfool,
    artifact_deepfool_budgets,
    finite_difference_deepfool,
)

CHECKPOINT_ARTIFACT = WEIGHTS


@dataclass(frozen=True)
class Gate:
    """Pass when the verified images show the artifact as good as its checkpoint.

    - Accuracy: the upper end of the 95 % interval of the paired accuracy drop (same images) is at most
      ``max_accuracy_drop``, so a small sample cannot pass a worse artifact (verify on more images instead).
    - ρ₂ at least ``min_rho_ratio`` times the checkpoint's.
    - When the query-only Square attack ran: the artifact's robust accuracy under it is not significantly
      (95 %) more than ``max_square_drop`` below the checkpoint's, so an artifact whose gradient-assisted ρ₂
      looks fine while a black-box attack finds it weaker fails.
    """

    max_accuracy_drop: float = 0.005
    min_rho_ratio: float = 0.95
    max_square_drop: float = 0.02

    def judge(self, record: dict, baseline: dict) -> dict:
        paired = record.get("accuracy_drop") or {"drop": baseline["clean_accuracy"] - record["clean_accuracy"]}
        drop = paired["drop"]
        upper = paired["ci95"][1] if "ci95" in paired else drop
        ratio = record["rho2_ratio"]
        reasons = []
        if upper > self.max_accuracy_drop + 1e-9:
            reason = f"accuracy drop {100 * drop:+.2f} pt"
            if upper > drop + 1e-9:
                reason += f" (up to {100 * upper:.2f} pt at 95 %, n={paired['images']})"
            reason += f" > {100 * self.max_accuracy_drop:.2f} pt"
            if drop <= self.max_accuracy_drop + 1e-9:
                reason += ": too few images to tell, verify on more (--limit)"
            reasons.append(reason)
        if not ratio >= self.min_rho_ratio:
            reasons.append(f"rho2 ratio {ratio:.3f} < {self.min_rho_ratio:.3f}")
        square = (record.get("square") or {}).get("robust_drop")
        if square and square["ci95"][0] > self.max_square_drop + 1e-9:
            reasons.append(f"Square robust accuracy {100 * square['drop']:.1f} pt below the checkpoint's "
                           f"(at least {100 * square['ci95'][0]:.1f} pt at 95 %, n={square['images']}) > "
                           f"{100 * self.max_square_drop:.1f} pt")
        return {"passed": not reasons, "reasons": reasons, "accuracy_drop": drop, "accuracy_drop_upper95": upper,
                "rho2_ratio": ratio, **asdict(self)}


@dataclass(frozen=True)
class VerifySettings(EvalSettings):
    """How artifacts are attacked (recorded with every result): the evaluation's settings and these."""

    limit: int | None = None
    iterations: tuple[int, ...] = (5, 50)
    bisection_steps: int = 8
    crosscheck: int = 0  # images for the finite-difference cross-check (small inputs only; 0: skip)
    crosscheck_step: float = 1e-2
    crosscheck_iterations: int = 10
    square: int = 100  # images for the query-only Square attack at the l-inf eps_ref (0: skip)
    square_queries: int = 1000
    strong: int = 0  # images for the stronger white-box attacks on the checkpoint (best-of, AutoAttack; 0: skip)

    def record(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def _attacks(model: torch.nn.Module, runner: Runner, x: torch.Tensor, settings: VerifySettings,
             budgets: tuple[int, ...], bounds: tuple[float, float] | None = None) -> dict[int, ArtifactAttack]:
    parts = [artifact_deepfool_budgets(model, runner, xb, budgets, num_candidates=settings.num_candidates,
                                       overshoot=settings.overshoot, bounds=bounds,
                                       bisection_steps=settings.bisection_steps)
             for (xb,) in chunks(settings.batch_size, f"verify/{'+'.join(map(str, sorted(budgets)))}", x)]
    return {budget: ArtifactAttack(*(torch.cat([getattr(p[budget], f) for p in parts]) for f in
                                     ("perturbation", "fooled", "iterations", "start_labels", "unshrunk")))
            for budget in budgets}


def attack_record(model: torch.nn.Module, runner: Runner, x: torch.Tensor, y: torch.Tensor,
                  eps_ref: dict[str, float], settings: VerifySettings) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Every metric of one artifact (see the module docstring); also the per-image ρ₂ at the most iterations
    and whether each image is classified correctly (for the paired accuracy comparison)."""
    started = time.perf_counter()
    labels = runner.predict(x).argmax(1)
    with torch.no_grad():
        reference_labels = predict(model, x, batch_size=settings.batch_size)
    correct = labels == y
    record: dict = {**accuracy_fields(correct), "top1_agreement": (labels == reference_labels).float().mean().item(),
                    "deepfool": {}, "timings": {}}
    x_norms = l2_norms(x)
    t0 = time.perf_counter()
    results = _attacks(model, runner, x, settings, settings.iterations)
    record["timings"]["deepfool_images_per_s"] = len(x) / (time.perf_counter() - t0)  # every budget, one sweep
    for iterations, result in sorted(results.items()):
        record["deepfool"][str(iterations)] = summarize(l2_norms(result.perturbation), x_norms, result.fooled,
                                                        result.iterations)
    most = max(settings.iterations)
    rho = results[most].rho(x)
    boxed = _attacks(model, runner, x, settings, (most,), bounds=(0.0, 1.0))[most]
    rounded = ((x + boxed.unshrunk) * 255).round() / 255
    fooled_8bit = (runner.predict(rounded).argmax(1) != boxed.start_labels) & boxed.fooled
    record["deepfool"]["box_constrained"] = {
        "max_iter": most, **summarize(l2_norms(boxed.perturbation), x_norms, boxed.fooled, boxed.iterations),
        "fooled_8bit": fooled_8bit.float().mean().item()}
    record.update(linf_grid(model, x, y, eps_ref, settings=settings, device=torch.device("cpu"),
                            judge=runner.predict))
    record["timings"]["total_s"] = time.perf_counter() - started
    return record, rho, correct


def paired_accuracy_drop(baseline: torch.Tensor, artifact: torch.Tensor) -> dict:
    """The checkpoint's accuracy minus the artifact's on the same images, with a 95 % interval for the paired
    difference (only images on which the two disagree carry information, as in McNemar's test)."""
    n = len(baseline)
    lost = int((baseline & ~artifact).sum())  # right before export, wrong after
    gained = int((~baseline & artifact).sum())
    drop = (lost - gained) / n
    half = 1.959964 * math.sqrt(max(lost + gained - (lost - gained) ** 2 / n, 0.0)) / n
    return {"drop": drop, "ci95": [drop - half, drop + half], "images": n, "lost": lost, "gained": gained}


def crosscheck_record(runner: Runner, x: torch.Tensor, settings: VerifySettings, model: torch.nn.Module) -> dict:
    """ρ₂ from finite-difference DeepFool (the artifact alone) vs the gradient-assisted attack, same images."""
    sample = x[: settings.crosscheck]
    most = settings.crosscheck_iterations
    t0 = time.perf_counter()
    blind = finite_difference_deepfool(runner, sample, max_iter=most, num_candidates=settings.num_candidates,
                                       overshoot=settings.overshoot, step=settings.crosscheck_step)
    seconds = time.perf_counter() - t0
    assisted = artifact_deepfool(model, runner, sample, max_iter=most, num_candidates=settings.num_candidates,
                                 overshoot=settings.overshoot, bisection_steps=settings.bisection_steps)
    rho_blind, rho_assisted = blind.rho(sample).mean().item(), assisted.rho(sample).mean().item()
    return {"images": len(sample), "max_iter": most,
            "method": f"finite-difference DeepFool (central, step {settings.crosscheck_step})",
            "rho2_finite_difference": rho_blind, "rho2_gradient_assisted": rho_assisted,
            "relative_difference": abs(rho_blind - rho_assisted) / max(rho_assisted, 1e-12),
            "fooled_finite_difference": blind.fooled.float().mean().item(), "seconds": seconds}


def square_record(runner: Runner, x: torch.Tensor, y: torch.Tensor, eps_ref: dict, settings: VerifySettings
                  ) -> tuple[dict, torch.Tensor]:
    """Robust accuracy of the artifact itself under the query-only Square attack (its logits alone, so it works
    on quantised artifacts where gradients and finite differences see nothing) at the l∞ ε_ref; also the
    per-image robust flags (for the paired comparison with the checkpoint)."""
    from ddzoo.eval.strong import accuracy_record, square_robust

    n = settings.square
    started = time.perf_counter()
    robust = square_robust(runner.predict, x[:n], y[:n], norm="Linf", eps=float(eps_ref["fgs"]),
                           queries=settings.square_queries)
    return {"eps": float(eps_ref["fgs"]), "norm": "Linf", "seconds": time.perf_counter() - started,
            "method": "Square attack (torchattacks 3.5.1), the artifact's own logits only",
            **accuracy_record(robust), "queries": settings.square_queries}, robust


def strong_checkpoint_record(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: str,
                             settings: VerifySettings, previous: dict | None, sha256: str) -> dict | None:
    """The checkpoint's stronger-attack record (minimum-norm best-of and AutoAttack at the dataset's standard
    budgets) on the first ``settings.strong`` images; without ``strong``, the one measured before on the same
    weights is kept (it is the checkpoint's, and costs minutes to redo)."""
    if settings.strong:
        from ddzoo.eval.strong import strong_record

        n = settings.strong
        return strong_record(model, x[:n], y[:n], dataset, autoattack=True)
    if previous and previous.get("sha256") == sha256:
        return previous.get("strong")
    return None


def resolve_eps_ref(package: Path, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The checkpoint's ε grid anchor: stored with the package (:func:`~ddzoo.package.read_eps_ref`), else found
    now by bisection on the verification images."""
    stored = read_eps_ref(package)
    if stored is not None:
        return {**{a: float(stored[a]) for a in LINF_ATTACKS}, "source": "package config.json"}
    found = {a: find_eps_ref(model, x, y, a, settings=EvalSettings(), device=torch.device("cpu"))
             for a in LINF_ATTACKS}
    return {**found, "source": f"bisection on the {len(x)} verification images (none stored with the package)"}


def verify_package(package: Path | str, *, artifacts: list[str] | None = None,
                   settings: VerifySettings = VerifySettings(), gate: Gate = Gate(),
                   plot: Path | str | None = None, write: bool = True) -> dict:
    """Verify artifacts of ``package`` and update its ``verification.json``.

    Args:
        package: a folder made by ``zoo export``.
        artifacts: paths inside the package (default: every ONNX file and engine).
        settings: attack settings; ``settings.limit`` verifies on the first N test images.
        gate: the pass/fail thresholds.
        plot: if given, write the ρ₂ histograms and accuracy-vs-ε curves there (PNG).
        write: update the package's ``verification.json`` (False: only return the records, e.g. for a
            read-only cache snapshot).

    Returns:
        the updated contents of ``verification.json``; records of artifacts the package no longer holds
        are dropped.
    """
    package = Path(package)
    config = read_config(package)
    names = artifacts or package_artifacts(package)
    missing = [n for n in names if n not in package_artifacts(package)]
    if missing:
        raise InvalidArgumentError(f"{package}: no artifact {missing}; choose from {package_artifacts(package)}")
    x, y = load_split(config["dataset"], "test").tensors(limit=settings.limit)
    verification = read_verification(package)
    present = {CHECKPOINT_ARTIFACT, *package_artifacts(package)}
    verification["records"] = {k: v for k, v in verification["records"].items() if k in present}
    with open_runner(package, backend="torch", device="cpu") as checkpoint:
        model = checkpoint.model
        for p in model.parameters():
            p.requires_grad_(False)
        eps_ref = resolve_eps_ref(package, model, x, y)
        common = {"dataset": config["dataset"], "split": "test", "settings": settings.record(),
                  "eps_ref": eps_ref, "versions": package_versions()}
        rhos, corrects = {}, {}
        baseline, rhos[CHECKPOINT_ARTIFACT], baseline_correct = attack_record(model, checkpoint, x, y, eps_ref,
                                                                               settings)
        baseline.update(artifact=CHECKPOINT_ARTIFACT, sha256=sha256_file(package / WEIGHTS),
                        runtime=checkpoint.describe(), rho2_ratio=1.0, **common)
        baseline["gate"] = {"passed": True, "reasons": [], "note": "the checkpoint is the baseline"}
        if settings.square:
            baseline["square"], baseline_robust = square_record(checkpoint, x, y, eps_ref, settings)
        baseline["strong"] = strong_checkpoint_record(model, x, y, config["dataset"], settings,
                                                      verification["records"].get(CHECKPOINT_ARTIFACT),
                                                      baseline["sha256"])
        verification["records"][CHECKPOINT_ARTIFACT] = baseline
        for name in names:
            with open_runner(package / name) as runner:
                record, rhos[name], correct = attack_record(model, runner, x, y, eps_ref, settings)
                record["accuracy_drop"] = paired_accuracy_drop(baseline_correct, correct)
                corrects[name] = correct
                if settings.square:
                    record["square"], robust = square_record(runner, x, y, eps_ref, settings)
                    record["square"]["robust_drop"] = paired_accuracy_drop(baseline_robust, robust)
                record["crosscheck"] = crosscheck_record(runner, x, settings, model) if settings.crosscheck else None
                record.update(artifact=name, sha256=sha256_file(package / name), bytes=(package / name).stat().st_size,
                              runtime=runner.describe(), **common)
            most = str(max(settings.iterations))
            record["rho2_ratio"] = record["deepfool"][most]["rho2"] / baseline["deepfool"][most]["rho2"]
            record["gate"] = gate.judge(record, baseline)
            record["verified_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            verification["records"][name] = record
    if write:
        write_verification(package, verification)
    if plot:
        from ddzoo.verification.plot import plot_verification

        corrects[CHECKPOINT_ARTIFACT] = baseline_correct
        norms = {name: rho * l2_norms(x) for name, rho in rhos.items()}
        plot_verification(verification, rhos, Path(plot), robust_norms={
            name: torch.where(corrects[name], norm, torch.zeros_like(norm)) for name, norm in norms.items()})
    return verification


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


def require_passing(package: Path | str, artifacts: list[str] | None = None) -> None:
    """Raise :class:`VerificationFailedError` unless every artifact has a passing record for its bytes."""
    status = verification_status(package)
    names = artifacts or [n for n in status if n != CHECKPOINT_ARTIFACT]
    bad = {n: status.get(n, "missing") for n in names if status.get(n) != "pass"}
    if bad:
        detail = ", ".join(f"{n}: {s}" for n, s in bad.items())
        raise VerificationFailedError(f"{package}: not verified as passing ({detail}); run 'zoo verify {package}'")
