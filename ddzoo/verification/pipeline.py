"""``zoo verify``: robustness measured on the exact bytes that will be deployed.

The pipeline: plan (:mod:`~ddzoo.verification.plan`) → checkpoint attacks, once per batch
(:mod:`~ddzoo.verification.checkpoint`) → replay on every artifact with forward passes, the artifact-in-the-loop
DeepFool only for images whose decisions leave the checkpoint's path (:mod:`~ddzoo.verification.replay`) → Square on
each artifact alone → robust accuracy per declared threat model (:mod:`~ddzoo.verification.robust`) → gate
(:mod:`~ddzoo.verification.gate`) → records in ``verification.json``, each tied to its artifact's sha256, so
``zoo publish`` can refuse artifacts without a passing record for their current bytes.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ddzoo.attacks import attack_copy
from ddzoo.attacks.deepfool import l2_norms
from ddzoo.device import show_progress
from ddzoo.distributed import (
    DistContext,
    all_reduce_scalar,
    gather_batches,
    init_distributed,
    my_batches,
)
from ddzoo.errors import InvalidArgumentError, shorten
from ddzoo.eval.robustness import linf_eps
from ddzoo.eval.threat import declared_threat_models
from ddzoo.fileio import sha256_file
from ddzoo.package import WEIGHTS, in_deployment_order, package_versions, read_verification, write_verification
from ddzoo.records import (
    ARTIFACT_KEYS,
    BOX_CONSTRAINED,
    CHECKPOINT_KEYS,
    CLEAN_CORRECT,
    ArtifactRecord,
    DeepFoolSummary,
    GateResult,
    pack_flags,
)
from ddzoo.runtime import Runner, open_runner
from ddzoo.stats import Accuracy, PairedDrop
from ddzoo.verification.attack import ArtifactAttack, Predictor, artifact_deepfool_budgets
from ddzoo.verification.checkpoint import BOX, CheckpointBatch, attack_checkpoint
from ddzoo.verification.gate import Gate
from ddzoo.verification.plan import VerifySettings, eps_ref_record, make_plan
from ddzoo.verification.progress import EVERY, SavedRuns, clear_progress, load_progress, run_key, save_progress
from ddzoo.verification.record import crosscheck_record, square_record, strong_checkpoint_record
from ddzoo.verification.replay import replay_deepfool
from ddzoo.verification.robust import robust_records

BASELINE_GATE = GateResult(True, (), {"note": "the checkpoint is the baseline"})
REPLAY_METHOD = ("the checkpoint's DeepFool decisions replayed on the artifact (forward passes), its perturbation "
                 "kept where the artifact takes them all; artifact-in-the-loop DeepFool with the checkpoint's "
                 "gradients for the images whose decisions leave that path; every perturbation moved onto the "
                 "artifact's own boundary by bisection")
IN_THE_LOOP_METHOD = "artifact-in-the-loop DeepFool with the checkpoint's gradients, bisected onto its boundary"


@dataclass
class Measurement:
    """One runner's per-image results, gathered batch by batch."""

    correct: list[torch.Tensor] = field(default_factory=list)
    agree: list[torch.Tensor] = field(default_factory=list)
    norms: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    fooled: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    iterations: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    fooled_8bit: list[torch.Tensor] = field(default_factory=list)
    linf: dict[str, list[list[torch.Tensor]]] = field(default_factory=dict)
    left_path: dict[str, int] = field(default_factory=dict)
    line_search: dict[str, int] = field(default_factory=dict)
    deepfool_seconds: float = 0.0  # checkpoint: its unconstrained DeepFool sweep; artifact: its replay
    seconds: float = 0.0

    def add_deepfool(self, key: str, attack: ArtifactAttack, redone: tuple[torch.Tensor, torch.Tensor]) -> None:
        """One batch's results at one budget; ``redone``: the images attacked in the loop, and those whose line
        search ran on the runner."""
        self.norms.setdefault(key, []).append(l2_norms(attack.perturbation))
        self.fooled.setdefault(key, []).append(attack.fooled)
        self.iterations.setdefault(key, []).append(attack.iterations)
        self.left_path[key] = self.left_path.get(key, 0) + int(redone[0].sum())
        self.line_search[key] = self.line_search.get(key, 0) + int(redone[1].sum())

    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
        """Its batches so far as flat tensors keyed under ``prefix``, and its counts (a resumable state)."""
        tensors = {f"{prefix}correct": torch.cat(self.correct), f"{prefix}agree": torch.cat(self.agree),
                   f"{prefix}fooled_8bit": torch.cat(self.fooled_8bit)}
        for part in ("norms", "fooled", "iterations"):
            tensors.update({f"{prefix}{part}/{key}": torch.cat(v) for key, v in getattr(self, part).items()})
        for attack, columns in self.linf.items():
            tensors.update({f"{prefix}linf/{attack}/{i}": torch.cat(column) for i, column in enumerate(columns)})
        counts = {"left_path": self.left_path, "line_search": self.line_search,
                  "deepfool_seconds": self.deepfool_seconds, "seconds": self.seconds}
        return tensors, counts

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], counts: dict, prefix: str) -> Measurement:
        """The inverse of :meth:`state` (each field one concatenated batch)."""
        mine = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
        parts = {part: {key.split("/", 1)[1]: [t] for key, t in mine.items() if key.startswith(f"{part}/")}
                 for part in ("norms", "fooled", "iterations")}
        linf: dict[str, list[list[torch.Tensor]]] = {}
        for key in sorted((k for k in mine if k.startswith("linf/")), key=lambda k: int(k.rsplit("/", 1)[1])):
            linf.setdefault(key.split("/")[1], []).append([mine[key]])
        return cls(correct=[mine["correct"]], agree=[mine["agree"]], fooled_8bit=[mine["fooled_8bit"]], linf=linf,
                   left_path=dict(counts["left_path"]), line_search=dict(counts["line_search"]),
                   deepfool_seconds=float(counts["deepfool_seconds"]), seconds=float(counts["seconds"]), **parts)

    def gathered(self, sizes: list[int], ctx: DistContext) -> Measurement:
        """Every rank's batches in global order (torchrun); counts summed, seconds the slowest rank's."""
        if not ctx.enabled:
            return self

        def total(counts: dict[str, int]) -> dict[str, int]:
            return {key: int(all_reduce_scalar(value, ctx)) for key, value in counts.items()}

        return Measurement(
            correct=gather_batches(self.correct, sizes, ctx), agree=gather_batches(self.agree, sizes, ctx),
            norms={k: gather_batches(v, sizes, ctx) for k, v in self.norms.items()},
            fooled={k: gather_batches(v, sizes, ctx) for k, v in self.fooled.items()},
            iterations={k: gather_batches(v, sizes, ctx) for k, v in self.iterations.items()},
            fooled_8bit=gather_batches(self.fooled_8bit, sizes, ctx),
            linf={k: [gather_batches(column, sizes, ctx) for column in v] for k, v in self.linf.items()},
            left_path=total(self.left_path), line_search=total(self.line_search),
            deepfool_seconds=all_reduce_scalar(self.deepfool_seconds, ctx, "max"),
            seconds=all_reduce_scalar(self.seconds, ctx, "max"))


def _measure(runner: Predictor, batch: CheckpointBatch, reference_labels: torch.Tensor, labels: torch.Tensor,
             deepfool: dict[int, ArtifactAttack], boxed: ArtifactAttack,
             redone: dict[str, tuple[torch.Tensor, torch.Tensor]], into: Measurement) -> None:
    """Everything but DeepFool's search, for one batch on one runner: accuracy, agreement, the DeepFool results
    given, the 8-bit check of the box-constrained ones and the FGS / BIM adversarials judged by ``runner``."""
    into.correct.append(labels == batch.y)
    into.agree.append(labels == reference_labels)
    for budget, attack in deepfool.items():
        into.add_deepfool(str(budget), attack, redone[str(budget)])
    into.add_deepfool(BOX_CONSTRAINED, boxed, redone[BOX_CONSTRAINED])
    rounded = ((batch.x + boxed.unshrunk) * 255).round() / 255
    into.fooled_8bit.append((runner.predict(rounded).argmax(1) != boxed.start_labels) & boxed.fooled)
    for attack, adversarials in batch.linf.items():
        judged = [runner.predict(adv).argmax(1) == batch.y for adv in adversarials]
        into.linf.setdefault(attack, [[] for _ in judged])
        for column, correct in zip(into.linf[attack], judged, strict=True):
            column.append(correct)


def _same_start(labels_logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Per image: the runner's top-K classes are the checkpoint's DeepFool candidates, the same one first."""
    top = labels_logits.topk(candidates.shape[1], dim=1).indices
    return (top[:, 0] == candidates[:, 0]) & torch.all(top.sort(1).values == candidates.sort(1).values, dim=1)


def _artifact_deepfool(model: torch.nn.Module, runner: Runner, batch: CheckpointBatch, logits: torch.Tensor,
                       settings: VerifySettings) -> tuple[dict[int, ArtifactAttack], ArtifactAttack,
                                                          dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The artifact's DeepFool results on one batch: replayed, or (``settings.replay`` off) all in the loop;
    also, per budget, which images were attacked in the loop and which had their line search redone."""
    common = {"num_candidates": settings.num_candidates, "overshoot": settings.overshoot,
              "bisection_steps": settings.bisection_steps, "screen": settings.screen}
    most = max(settings.iterations)
    if not settings.replay:
        everything = torch.ones(len(batch.x), dtype=torch.bool)
        deepfool = artifact_deepfool_budgets(model, runner, batch.x, settings.iterations, **common)
        boxed = artifact_deepfool_budgets(model, runner, batch.x, (most,), bounds=BOX, **common)[most]
        all_redone = (everything, everything)
        return deepfool, boxed, {**{str(b): all_redone for b in deepfool}, BOX_CONSTRAINED: all_redone}
    same_start = _same_start(logits, batch.candidates)
    deepfool, left, searched = replay_deepfool(model, runner, batch.x, batch.deepfool, batch.trace, same_start,
                                               tolerance=settings.replay_tolerance, **common)
    boxed, left_boxed, searched_boxed = replay_deepfool(model, runner, batch.x, {most: batch.boxed},
                                                        batch.boxed_trace, same_start,
                                                        tolerance=settings.replay_tolerance, bounds=BOX, **common)
    return deepfool, boxed[most], {**{str(b): (left, searched[b]) for b in deepfool},
                                   BOX_CONSTRAINED: (left_boxed, searched_boxed[most])}


def _record(name: str, package: Path, runner: Runner, measured: Measurement, x_norms: torch.Tensor, eps_ref: dict,
            settings: VerifySettings, method: str, common: dict, robust: bool
            ) -> tuple[ArtifactRecord, torch.Tensor, torch.Tensor]:
    """The one builder of a record, the checkpoint's (``name`` = its weights: the baseline, ratio 1) or an
    artifact's: every field measured on ``runner``; an artifact's comparisons with the checkpoint (paired drop,
    ratio, gate) are filled in by :func:`_compare`; ``robust``: the record will hold robust accuracy per threat
    model. Also the per-image ρ₂ at the most iterations and correctness, for the plot and the paired
    comparisons."""
    correct = torch.cat(measured.correct)
    deepfool = {}
    for key in [*map(str, sorted(settings.iterations)), BOX_CONSTRAINED]:
        norms, fooled, steps = (torch.cat(part[key]) for part in
                                (measured.norms, measured.fooled, measured.iterations))
        box = {}
        if key == BOX_CONSTRAINED:
            box = {"max_iter": max(settings.iterations),
                   "fooled_8bit": torch.cat(measured.fooled_8bit).float().mean().item()}
        deepfool[key] = DeepFoolSummary.measure(norms, x_norms, fooled, steps, **box)
    grid = linf_eps(eps_ref)
    linf = {attack: {"eps": grid[attack], "accuracy": [torch.cat(c).float().mean().item() for c in columns]}
            for attack, columns in measured.linf.items()}
    rate = "replay_images_per_s" if method in (REPLAY_METHOD, IN_THE_LOOP_METHOD) else "deepfool_images_per_s"
    is_checkpoint = name == WEIGHTS
    extra = {CLEAN_CORRECT: pack_flags(correct),
             "timings": {rate: len(correct) / max(measured.deepfool_seconds, 1e-9), "total_s": measured.seconds},
             "method": {"deepfool": method, "images_in_the_loop": dict(measured.left_path),
                        "images_line_search_redone": dict(measured.line_search)},
             **({} if is_checkpoint else {"bytes": (package / name).stat().st_size}), **common}
    layout = CHECKPOINT_KEYS if is_checkpoint else ARTIFACT_KEYS
    record = ArtifactRecord(
        artifact=name, sha256=sha256_file(package / name), clean=Accuracy.of(correct), runtime=runner.runtime_record(),
        gate=BASELINE_GATE if is_checkpoint else GateResult(False, ("not judged",)), deepfool=deepfool,
        top1_agreement=torch.cat(measured.agree).float().mean().item(), rho2_ratio=1.0 if is_checkpoint else None,
        fgs=linf.get("fgs"), bim=linf.get("bim"), extra=extra,
        order=tuple(k for k in layout if (k != "square" or settings.square_images)  # not measured: no field
                    and (k != "robust" or robust)))
    most = str(max(settings.iterations))
    return record, torch.cat(measured.norms[most]) / x_norms, correct


def _compare(record: ArtifactRecord, baseline: ArtifactRecord, settings: VerifySettings, gate: Gate,
             declared: tuple[str, ...], **measured) -> ArtifactRecord:
    """An artifact's record with ``measured`` (paired drop, Square, cross-check, robust figures) and its
    comparison with the checkpoint's: the ρ₂ ratio at the most iterations, and the gate's verdict (``declared``:
    the threat models' keys)."""
    most = str(max(settings.iterations))
    record = replace(record, **measured, rho2_ratio=record.deepfool[most].rho2 / baseline.deepfool[most].rho2)
    verified_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return replace(record, gate=gate.judge(record, baseline, declared),
                   extra={**record.extra, "verified_at": verified_at})


def _kept_robust(previous: dict | None, record: ArtifactRecord, declared: list,
                 baseline: ArtifactRecord | None = None) -> dict | None:
    """Robust figures measured before (``--robust 0`` skips them), kept while they are for the same bytes and, for
    an artifact, while the checkpoint keeps the figures they were paired with; None otherwise."""
    if not declared or not previous or previous.get("sha256") != record.sha256:
        return None
    kept = previous.get("robust")
    if baseline is not None and kept and set(baseline.robust or {}) != set(kept):
        return None
    return kept


def _restored(tensors: dict[str, torch.Tensor], counts: dict, names: list[str], images: int,
              state: Path | str) -> dict[str, Measurement]:
    """The measurements of a saved state, which must hold ``images`` per-image results for each of ``names``;
    else a one-line error (a state is a file on disk: it may be damaged or crafted)."""
    try:
        if any(t.ndim != 1 or len(t) != images for t in tensors.values()):
            raise ValueError(f"not {images} results per field")
        return {name: Measurement.from_state(tensors, counts[name], f"{name}:") for name in names}
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise InvalidArgumentError(f"the verification state in {state} is malformed ({type(err).__name__}: "
                                   f"{shorten(str(err), 60)}); delete it to start afresh") from None


def verify_package(package: Path | str, *, artifacts: list[str] | None = None,
                   settings: VerifySettings = VerifySettings(), gate: Gate = Gate(),
                   plot: Path | str | None = None, write: bool = True, adversarials: Path | str | None = None,
                   trust_adversarials: bool = False, state: Path | str | None = None) -> dict:
    """Verify artifacts of ``package`` and update its ``verification.json``.

    Args:
        package: a folder made by ``zoo export``.
        artifacts: paths inside the package (default: every ONNX file and engine).
        settings: attack settings; ``settings.limit`` verifies on the first N test images.
        gate: the pass/fail thresholds.
        plot: if given, write the ρ₂ histograms and accuracy-vs-ε curves there (PNG).
        write: update the package's ``verification.json`` (False: only return the records, e.g. for a
            read-only cache snapshot).
        adversarials: the folder of stored AutoAttack batches (default: the zoo cache's; see
            :mod:`ddzoo.eval.autoattack`): batches for the same weights, images and budget are replayed
            instead of attacked again, new ones stored. ``trust_adversarials``: also batches whose MAC does
            not verify (written elsewhere; the records count them).
        state: a folder for the run's progress, saved every few batches and after each Square run, and taken up by
            a later call for the same bytes, settings and images (:mod:`ddzoo.verification.progress`); cleared once
            the records are made.

    Returns:
        the updated contents of ``verification.json``; records of artifacts the package no longer holds
        are dropped. Under ``torchrun`` every process takes its share of the batches; rank 0 alone then runs
        Square and the stronger attacks, writes the file and the plots and gets these contents (the others: ``{}``).
    """
    ctx = init_distributed(torch.device("cpu"))  # torchrun: split the batches across its processes
    plan = make_plan(package, artifacts, settings)
    package, x, y = plan.package, plan.x, plan.y
    declared = declared_threat_models(plan.config)
    threats = declared if settings.robust_images else []
    verification = read_verification(package)
    present = {WEIGHTS, *plan.present}
    verification["records"] = {k: v for k, v in verification["records"].items() if k in present}
    x_norms = l2_norms(x)
    with ExitStack() as stack:
        checkpoint = stack.enter_context(open_runner(package, backend="torch", device="cpu"))
        model = attack_copy(checkpoint.model)
        eps_ref = eps_ref_record(package, x, y)
        runners = {name: stack.enter_context(open_runner(package / name)) for name in plan.artifacts}
        measured = {name: Measurement() for name in [WEIGHTS, *plan.artifacts]}
        starts = list(range(0, len(x), settings.batch_size))
        if len(starts) < ctx.world_size:
            raise InvalidArgumentError(f"{ctx.world_size} processes need as many batches of {settings.batch_size} "
                                       f"images; {len(x)} images make {len(starts)}: verify on more images or start "
                                       "fewer processes")
        label = f"verify: checkpoint attacks + replay on {len(runners)} artifact(s)"
        mine = [starts[i] for i in my_batches(len(starts), ctx)]
        key, done = None, 0
        if state is not None:
            if ctx.enabled:
                raise InvalidArgumentError("--state keeps one process's progress; leave it out under torchrun")
            key = run_key({name: sha256_file(package / name) for name in measured}, settings.record(), len(x),
                          eps_ref)
            resumed = load_progress(Path(state), key, len(x), len(measured))
            if resumed:
                done, tensors, counts = resumed
                images = sum(min(settings.batch_size, len(x) - begin) for begin in mine[:done])
                measured = _restored(tensors, counts, list(measured), images if done <= len(mine) else -1, state)
        for begin in tqdm(mine[done:], desc=label, disable=not show_progress() or not ctx.is_main, leave=False,
                          unit="batch", initial=done, total=len(mine)):
            xb, yb = x[begin:begin + settings.batch_size], y[begin:begin + settings.batch_size]
            started = time.perf_counter()
            batch = attack_checkpoint(model, checkpoint, xb, yb, eps_ref, settings)
            reference_labels = checkpoint.predict(xb).argmax(1)
            none = (torch.zeros(len(xb), dtype=torch.bool),) * 2
            _measure(checkpoint, batch, reference_labels, reference_labels, batch.deepfool, batch.boxed,
                     {**{str(b): none for b in batch.deepfool}, BOX_CONSTRAINED: none}, measured[WEIGHTS])
            measured[WEIGHTS].deepfool_seconds += batch.deepfool_seconds
            measured[WEIGHTS].seconds += time.perf_counter() - started
            for name, runner in runners.items():
                started = time.perf_counter()
                logits = runner.predict(xb)
                deepfool, boxed, left = _artifact_deepfool(model, runner, batch, logits, settings)
                measured[name].deepfool_seconds += time.perf_counter() - started
                _measure(runner, batch, reference_labels, logits.argmax(1), deepfool, boxed, left, measured[name])
                measured[name].seconds += time.perf_counter() - started
            done += 1
            if key is not None and (done % EVERY == 0 or done == len(mine)):  # the last: a stop in Square keeps it
                saved = {name: part.state(f"{name}:") for name, part in measured.items()}
                flat = {k: v for tensors, _ in saved.values() for k, v in tensors.items()}
                save_progress(Path(state), key, done, flat, {name: counts for name, (_, counts) in saved.items()})
        sizes = [min(settings.batch_size, len(x) - begin) for begin in starts]
        measured = {name: part.gathered(sizes, ctx) for name, part in measured.items()}
        if not ctx.is_main:  # rank 0 does the rest (Square, the stronger attacks, the records) without collectives:
            return {}  # a rank waiting on it could pass gloo's timeout during a long Square run
        common = {"dataset": plan.config["dataset"], "split": "test", "settings": settings.record(),
                  "eps_ref": eps_ref, "versions": package_versions()}
        rhos, corrects = {}, {}
        baseline, rhos[WEIGHTS], corrects[WEIGHTS] = _record(
            WEIGHTS, package, checkpoint, measured[WEIGHTS], x_norms, eps_ref, settings,
            "DeepFool on the checkpoint, bisected onto its boundary", common, bool(declared))
        square_runs = SavedRuns(Path(state) if state is not None else None, key)  # saved as each one ends
        if settings.square_images:
            square, baseline_robust = square_record(checkpoint, x, y, eps_ref, settings, WEIGHTS, square_runs)
            baseline = replace(baseline, square=square)
        previous = verification["records"].get(WEIGHTS)
        baseline = replace(baseline, strong=strong_checkpoint_record(
            model, x, y, plan.config["dataset"], settings, previous, baseline.sha256, store=adversarials))
        per_threat = robust_records(model, {WEIGHTS: checkpoint, **runners}, x, y, threats,
                                    images=settings.robust_images, square=settings.square_images > 0,
                                    square_queries=settings.square_queries, batch_size=settings.batch_size,
                                    store=adversarials, trust=trust_adversarials, baseline=WEIGHTS,
                                    saved=square_runs)
        baseline = replace(baseline, robust=per_threat.get(WEIGHTS) or _kept_robust(previous, baseline, declared))
        verification["records"][WEIGHTS] = baseline.to_json()
        for name, runner in runners.items():
            method = REPLAY_METHOD if settings.replay else IN_THE_LOOP_METHOD
            record, rhos[name], corrects[name] = _record(name, package, runner, measured[name], x_norms, eps_ref,
                                                         settings, method, common, bool(declared))
            found: dict = {"accuracy_drop": PairedDrop.of(corrects[WEIGHTS], corrects[name]),
                           "robust": per_threat.get(name) or _kept_robust(verification["records"].get(name), record,
                                                                          declared, baseline)}
            if settings.square_images:
                square, robust = square_record(runner, x, y, eps_ref, settings, name, square_runs)
                found["square"] = {**square, "robust_drop": PairedDrop.of(baseline_robust, robust).to_json()}
            found["crosscheck"] = (crosscheck_record(runner, x, settings, model) if settings.crosscheck_images
                                   else None)
            verification["records"][name] = _compare(record, baseline, settings, gate,
                                                     tuple(t.key for t in declared), **found).to_json()
    verification["records"] = in_deployment_order(verification["records"])
    if write:
        write_verification(package, verification)
    if state is not None:
        clear_progress(Path(state))
    if plot:
        from ddzoo.verification.plot import plot_verification

        norms = {name: rho * x_norms for name, rho in rhos.items()}
        plot_verification(verification, rhos, Path(plot), robust_norms={
            name: torch.where(corrects[name], norm, torch.zeros_like(norm)) for name, norm in norms.items()})
    return verification
