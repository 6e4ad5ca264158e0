"""The ``zoo`` command: thin typer commands over importable functions.

``main()`` turns every failure into one line on stderr (user and hub input in it bounded) and an exit code a
script can act on:

====  ==========================================================================================================
 0    success
 1    error: the command could not do its job (a hub unreachable or holding no such model, a damaged or hostile
      download, a dataset, checkpoint or artifact that cannot be read or loaded)
 2    usage: fix the command line (an unknown option, name or value; a file that is not what the command takes;
      typer's own usage errors)
 3    gate failed: a verification ran and an artifact failed its gate (``zoo verify``), or ``zoo publish`` refused
      an artifact without a passing verification
 4    internal error: a bug; ``ZOO_DEBUG=1`` shows the traceback
130   interrupted (Ctrl-C)
====  ==========================================================================================================
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ddzoo.errors import (
    InvalidArgumentError,
    UnknownNameError,
    VerificationFailedError,
    ZooError,
    echo,
    shorten,
)
from ddzoo.package import ONNX
from ddzoo.printing import print_table

if TYPE_CHECKING:
    from ddzoo.records import ArtifactRecord

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
MESSAGE_CHARS = 1000  # the longest error message main() prints

app = typer.Typer(help="ddzoo: adversarially robust classifiers, verified as deployed.\n\n"
                       "Exit codes: 0 success, 1 error (a hub, file or model could not be used), 2 usage (fix the "
                       "command line), 3 a verification gate failed, 4 internal error (a bug), 130 interrupted.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Datasets: list and check the real data sources.", no_args_is_help=True)
models_app = typer.Typer(help="Architectures in the model registry.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DeviceOption = Annotated[str | None, typer.Option(help="torch device (default: cuda if available, else cpu).")]


def _emit(data: Any, as_json: bool, render) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        render(data)


@data_app.command("list")
def data_list(as_json: JsonOption = False) -> None:
    """List the datasets and their shapes."""
    from ddzoo.data import DATASETS

    rows = [{"name": d.name, "classes": d.num_classes, "shape": list(d.image_shape), "train": d.sizes["train"],
             "test": d.sizes["test"], "mean": list(d.mean), "std": list(d.std)} for d in DATASETS.values()]
    _emit(rows, as_json, lambda r: print_table(r, "datasets"))


@data_app.command("check")
def data_check(name: Annotated[str, typer.Argument(help="Dataset name.")], as_json: JsonOption = False) -> None:
    """Load both splits of a dataset, verifying every checksum."""
    from ddzoo.data import check_dataset

    rows = check_dataset(name)
    _emit(rows, as_json, lambda r: print_table(r, f"{name}: checksums verified"))


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """List registered architectures."""
    from ddzoo.models import get_model_spec, list_architectures

    rows = []
    for name in list_architectures():
        spec = get_model_spec(name)
        rows.append({"name": name, "input_shape": list(spec.input_shape), "datasets": list(spec.datasets),
                     "num_params": spec.num_params, "reference": spec.reference})
    _emit(rows, as_json, lambda r: print_table(r, "models"))


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write.")],
    recipe: Annotated[str, typer.Option(help="reference | deep-defense | adversarial | parseval.")] = "reference",
    model: Annotated[str, typer.Option(help="Architecture (reference recipe; see 'zoo models list').")] = "lenet",
    dataset: Annotated[str, typer.Option(help="Dataset (reference recipe; see 'zoo data list').")] = "mnist",
    init: Annotated[Path | None, typer.Option(
        help="Reference checkpoint to fine-tune (deep-defense; optional for adversarial and parseval).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Default: 10 (reference), 5 (deep-defense).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch. Default: 128 / 100.")] = None,
    lr: Annotated[float | None, typer.Option(help="Default: 0.01 (reference), 5e-4 (deep-defense).")] = None,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
    warmup_epochs: Annotated[float, typer.Option(help="Linear lr warm-up before the cosine decay (reference).")] = 0.0,
    label_smoothing: Annotated[float, typer.Option(help="Cross-entropy label smoothing (reference).")] = 0.0,
    lam: Annotated[float, typer.Option("--lambda", help="Regulariser weight λ.")] = 15.0,
    c: Annotated[float, typer.Option(help="Penalty exp(-c·ρ) on correct samples.")] = 25.0,
    d: Annotated[float, typer.Option(help="Penalty exp(d·ρ) on misclassified samples.")] = 5.0,
    max_iter: Annotated[int, typer.Option(help="Unrolled DeepFool iterations.")] = 5,
    candidates: Annotated[int, typer.Option(help="DeepFool candidate classes K.")] = 10,
    overshoot: float = 0.02,
    space: Annotated[str, typer.Option(help="Where ρ is measured: normalized (paper) | pixel.")] = "normalized",
    adv_norm: Annotated[str, typer.Option(help="Adversarial training: linf | l2.")] = "linf",
    adv_eps: Annotated[float, typer.Option(help="Adversarial training: ε ([0,1] pixels).")] = 0.3,
    adv_attack: Annotated[str, typer.Option(
        help="Adversarial training: pgd (Madry) | fgs (Goodfellow) | nfgsm (de Jorge et al. 2022).")] = "pgd",
    adv_noise: Annotated[float, typer.Option(help="N-FGSM: uniform noise half-width, in units of ε.")] = 2.0,
    guard_images: Annotated[int, typer.Option(
        help="Adversarial training: PGD accuracy on this many held-out images (needs --train-limit) after "
             "every epoch; the checkpoint keeps the best epoch.")] = 0,
    guard_steps: Annotated[int, typer.Option(help="PGD steps of the --guard-images check.")] = 10,
    adv_steps: Annotated[int, typer.Option(help="Adversarial training: PGD steps.")] = 7,
    adv_step_size: Annotated[float | None, typer.Option(help="PGD step (default 2.5·ε/steps).")] = None,
    adv_weight: Annotated[float, typer.Option(help="Weight of the adversarial loss (1: Madry, 0.5: FGS paper).")
                          ] = 1.0,
    beta: Annotated[float, typer.Option(help="Parseval retraction step β.")] = 3e-4,
    train_limit: Annotated[int | None, typer.Option(help="Use only the first N training images.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    stop_after_epochs: Annotated[int | None, typer.Option(help="Stop (resumably) after N epochs.")] = None,
    device: DeviceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train a reference model, or fine-tune one with Deep Defense; writes model.safetensors + config.json."""
    from ddzoo.package import read_config
    from ddzoo.train import TrainOptions, train_recipe

    options = TrainOptions(
        model=model, dataset=dataset, init=init, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
        weight_decay=weight_decay, seed=seed, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, lam=lam,
        c=c, d=d, max_iter=max_iter, candidates=candidates, overshoot=overshoot, space=space, adv_norm=adv_norm,
        adv_eps=adv_eps, adv_attack=adv_attack, adv_noise=adv_noise, guard_images=guard_images, guard_steps=guard_steps,
        adv_steps=adv_steps, adv_step_size=adv_step_size, adv_weight=adv_weight, beta=beta)
    folder = train_recipe(recipe, out, options, device=device, resume=resume, stop_after_epochs=stop_after_epochs,
                          train_limit=train_limit)
    if folder is None:
        _emit({"checkpoint": None, "stopped": True, "resume_with": "--resume"}, as_json,
              lambda _: typer.echo(f"stopped after {stop_after_epochs} epoch(s); continue with --resume"))
        return
    summary = {"checkpoint": str(folder), **read_config(folder)["metrics"]}
    _emit(summary, as_json, lambda s: typer.echo(
        f"wrote {s['checkpoint']}: test accuracy {s['test_accuracy']:.4f} in {s['train_seconds']} s"))


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder.")],
    dataset: Annotated[str | None, typer.Option(help="Test set (default: the checkpoint's).")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N test images only.")] = None,
    reference: Annotated[Path | None, typer.Option(help="Reference checkpoint for the ε grid.")] = None,
    candidates: Annotated[int, typer.Option(help="DeepFool candidate classes (top-K).")] = 10,
    batch_size: int = 500,
    attacks: Annotated[str | None, typer.Option(
        help="Stronger minimum-norm l2 attacks and their best-of, e.g. deepfool,fmn,ddn (also cw, bb; slow).")] = None,
    autoattack: Annotated[bool, typer.Option(
        help="AutoAttack robust accuracy (standard version) at --budgets, and a RobustBench-style entry.")] = False,
    budgets: Annotated[str | None, typer.Option(
        help="AutoAttack budgets, comma-separated NORM:EPS (e.g. linf:8/255,l2:0.5; default: the threat models the "
             "checkpoint declares, else the dataset's standard ones).")] = None,
    adversarials: Annotated[Path | None, typer.Option(
        help="Folder for AutoAttack's batches (default: the zoo cache's): a stopped run resumes from it, and 'zoo "
             "verify' replays them on the artifacts.")] = None,
    trust_adversarials: Annotated[bool, typer.Option(
        help="Also reuse stored AutoAttack batches this cache did not sign (counted in the output).")] = False,
    strong_limit: Annotated[int | None, typer.Option(help="Stronger attacks on the first N images only.")] = None,
    device: DeviceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Clean accuracy, DeepFool ρ₂ (5/50 iterations, pixel and normalised space), FGS/BIM accuracy; optionally
    stronger attacks (minimum-norm best-of, AutoAttack)."""
    from ddzoo.eval.checkpoint import evaluate_checkpoint
    from ddzoo.eval.robustness import EvalSettings
    from ddzoo.eval.threat import ThreatModel

    threats = [ThreatModel.parse(b) for b in (budgets or "").split(",") if b.strip()] or None
    metrics = evaluate_checkpoint(checkpoint, dataset=dataset, limit=limit, reference=reference,
                                  settings=EvalSettings(num_candidates=candidates, batch_size=batch_size),
                                  device=device, attacks=tuple(a for a in (attacks or "").split(",") if a),
                                  autoattack=autoattack, strong_limit=strong_limit, budgets=threats,
                                  adversarials=adversarials, trust_adversarials=trust_adversarials)
    _emit(metrics, as_json, _render_eval)


@app.command("export")
def export(
    source: Annotated[list[str], typer.Argument(
        help="CHECKPOINT (with --out), or: triton PACKAGE_OR_NAME OUT_DIR for a Triton model repository.")],
    out: Annotated[Path | None, typer.Option(help="Model package folder to write (replaced atomically).")] = None,
    formats: Annotated[str, typer.Option(
        help="Comma-separated: onnx, fp16, int8, trt-fp32, trt-fp16, trt-int8 (trt-* need TensorRT and a GPU).")
    ] = "onnx,fp16,int8",
    calibration_count: Annotated[int, typer.Option(help="INT8 calibration: real training images.")] = 512,
    calibration_seed: Annotated[int, typer.Option(help="INT8 calibration: which images (seed).")] = 0,
    calibration_method: Annotated[str, typer.Option(help="minmax | entropy | percentile.")] = "minmax",
    parity_limit: Annotated[int | None, typer.Option(help="Parity on the first N test images (default: all).")
                            ] = None,
    reference: Annotated[Path | None, typer.Option(
        help="The family's reference checkpoint or package, whose stored eps_ref the package takes (for a model "
             "trained from scratch; default: the checkpoint's own, or its --init's).")] = None,
    artifact: Annotated[str, typer.Option(help="triton: the artifact to serve (ONNX file or engine).")
                        ] = ONNX,
    name: Annotated[str | None, typer.Option(help="triton: model name (default: the package's).")] = None,
    max_batch: Annotated[int, typer.Option(help="triton: max_batch_size.")] = 64,
    max_delay_us: Annotated[int, typer.Option(help="triton: dynamic batching queue delay.")] = 2000,
    instances: Annotated[int, typer.Option(help="triton: model instances (instance_group count).")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Export a checkpoint to ONNX fp32 / fp16 / INT8 (Q/DQ) and TensorRT engines, with parity records;
    or (zoo export triton PACKAGE OUT_DIR) write a Triton model repository."""
    if source[0] == "triton":
        from ddzoo.export.triton import export_triton

        if len(source) != 3:
            raise InvalidArgumentError("usage: zoo export triton PACKAGE_OR_NAME OUT_DIR [--artifact FILE]")
        from ddzoo.zoo import resolve_package

        resolved = resolve_package(source[1])
        model_name = name or resolved.name
        folder = export_triton(resolved.folder, source[2], name=model_name, artifact=artifact, max_batch=max_batch,
                               max_delay_us=max_delay_us, instances=instances)
        _emit({"repository": str(folder.parent), "model": model_name, "path": str(folder)}, as_json,
              lambda r: typer.echo(f"wrote Triton model {r['model']} in {r['path']}"))
        return
    from ddzoo.export import export_package

    if len(source) != 1 or out is None:
        raise InvalidArgumentError("usage: zoo export CHECKPOINT --out PACKAGE_DIR [--formats ...]")
    record = export_package(source[0], out, formats=formats, calibration_count=calibration_count,
                            calibration_seed=calibration_seed, calibration_method=calibration_method,
                            parity_limit=parity_limit, reference=reference)
    rows = [{"artifact": name, "precision": a["precision"], "provider": a["runtime"]["provider"],
             "max |Δlogit|": f"{a['parity']['max_abs_logit_error']:.2e}",
             "mean |Δlogit|": f"{a['parity']['mean_abs_logit_error']:.2e}",
             "top-1 agreement": f"{a['parity']['top1_agreement']:.4f}", "accuracy": f"{a['parity']['accuracy']:.4f}"}
            for name, a in record["artifacts"].items()]
    images = next(iter(record["artifacts"].values()))["parity"]["images"]
    _emit(record, as_json, lambda _: print_table(rows, f"{out} (parity with torch on {images} test images)"))


@app.command("verify")
def verify(
    package: Annotated[str, typer.Argument(help="Model package folder (from 'zoo export'), or a model name.")],
    artifact: Annotated[list[str] | None, typer.Option(
        help="Artifact inside the package (repeatable; default: every ONNX file and engine).")] = None,
    limit: Annotated[int | None, typer.Option(help="Verify on the first N test images only.")] = None,
    candidates: Annotated[int, typer.Option(help="DeepFool candidate classes (top-K).")] = 10,
    crosscheck: Annotated[int, typer.Option(
        help="Images for the finite-difference cross-check (small inputs, not quantised; 0: skip).")] = 0,
    square: Annotated[int, typer.Option(
        help="Images for the query-only Square attack on each artifact at the l-inf eps_ref (0: skip).")] = 100,
    strong: Annotated[int, typer.Option(
        help="Images for the stronger white-box attacks on the checkpoint: minimum-norm best-of (DeepFool, FMN, "
             "DDN) and AutoAttack at the dataset's standard budgets (slow; 0: skip, keep an earlier record).")] = 0,
    robust: Annotated[int, typer.Option(
        help="Images for AutoAttack at each threat model the package declares, replayed on every artifact, and "
             "Square there on every artifact alone (unless --square 0); 0: skip, keep earlier figures.")] = 1000,
    adversarials: Annotated[Path | None, typer.Option(
        help="Folder of stored AutoAttack batches (default: the zoo cache's): reused for the same weights and "
             "images, new ones stored.")] = None,
    trust_adversarials: Annotated[bool, typer.Option(
        help="Also reuse stored AutoAttack batches this cache did not sign (written elsewhere; counted in the "
             "records).")] = False,
    state: Annotated[Path | None, typer.Option(
        help="Keep the run's progress in this folder every few batches and after each Square run; a stopped run "
             "started again with the same --state goes on from its last save (same package bytes, settings and "
             "images).")] = None,
    max_accuracy_drop: Annotated[float, typer.Option(
        help="Gate: largest accuracy drop (fraction), at the upper end of its 95 % interval.")] = 0.005,
    max_square_drop: Annotated[float, typer.Option(
        help="Gate: largest significant drop of Square robust accuracy below the checkpoint's.")] = 0.02,
    max_robust_drop: Annotated[float, typer.Option(
        help="Gate: largest significant drop of robust accuracy per threat model below the checkpoint's.")] = 0.0,
    min_rho_ratio: Annotated[float, typer.Option(help="Gate: smallest ρ₂ ratio to the checkpoint.")] = 0.95,
    plot: Annotated[Path | None, typer.Option(help="Write ρ₂ histograms and accuracy-vs-ε curves (PNG).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Images per attack batch (default 500); under torchrun, each process takes every N-th batch.")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        help="Verify a copy written here (the way to keep a record for a pulled or bundled model); for an "
             ".onnx file, the folder its verification.json goes to.")] = None,
    dataset: Annotated[str | None, typer.Option(help="ONNX file: the test set to verify on.")] = None,
    images: Annotated[Path | None, typer.Option(help="ONNX file: labelled images to verify on instead: an .npz "
                                                     "(images, labels) or a folder of class folders 0/, 1/ ... "
                                                     "of PNGs.")] = None,
    layout: Annotated[str | None, typer.Option(help="ONNX file: nchw | nhwc | flat (default: from the graph).")
                      ] = None,
    scale: Annotated[float | None, typer.Option(help="ONNX file: pixels are 1 ([0,1]) or 255 ([0,255]) "
                                                     "(default: probed on training images).")] = None,
    mean: Annotated[str | None, typer.Option(help="ONNX file: per-channel mean subtracted, e.g. 0.49,0.48,0.45.")
                    ] = None,
    std: Annotated[str | None, typer.Option(help="ONNX file: per-channel std divided by.")] = None,
    output: Annotated[str | None, typer.Option(help="ONNX file: the output holding the class scores.")] = None,
    channels: Annotated[str | None, typer.Option(help="ONNX file: rgb | bgr channel order (default: probed).")
                        ] = None,
    eps: Annotated[float | None, typer.Option(help="ONNX file: l-inf budget of the Square attack (0: skip; "
                                                   "default: the dataset's standard AutoAttack budget).")] = None,
    twin: Annotated[str | None, typer.Option(help="ONNX file: a zoo package or checkpoint of the same model, "
                                                  "for gradient-assisted DeepFool beside the query-only ρ₂.")] = None,
    min_accuracy: Annotated[float | None, typer.Option(help="ONNX file gate: smallest clean accuracy.")] = None,
    min_robust_accuracy: Annotated[float | None, typer.Option(
        help="ONNX file gate: smallest Square robust accuracy.")] = None,
    min_rho: Annotated[float | None, typer.Option(help="ONNX file gate: smallest decision-based ρ₂.")] = None,
    decision_steps: Annotated[int, typer.Option(help="ONNX file: HopSkipJump iterations (more: smaller ρ₂, "
                                                     "more queries).")] = 32,
    finite_differences: Annotated[int, typer.Option(help="ONNX file: images for DeepFool on central differences "
                                                         "(float models; 0: skip).")] = 20,
    as_json: JsonOption = False,
) -> None:
    """DeepFool against each exported artifact itself; records verification.json and applies the gate.

    A pulled or bundled model is read-only: its records are printed, not written, unless --out gives a copy.
    An .onnx file made anywhere is verified with queries alone (HopSkipJump ρ₂, Square robust accuracy) on
    --dataset's test images or on --images.
    """
    if package.endswith(".onnx") or dataset is not None or images is not None:
        from ddzoo.records import ArtifactRecord
        from ddzoo.verification.foreign import ForeignGate
        from ddzoo.zoo.verify import raise_gate_failures, verify_onnx_file

        record = verify_onnx_file(package, dataset=dataset, images=images, limit=limit, eps=eps, twin=twin, out=out,
                                  plot=plot, decision_steps=decision_steps, finite_differences=finite_differences,
                                  gate=ForeignGate(min_accuracy, min_robust_accuracy, min_rho), layout=layout,
                                  scale=scale, mean=_floats(mean, "--mean"), std=_floats(std, "--std"), output=output,
                                  channels=channels)
        typed = ArtifactRecord.from_json(record)
        _emit(record, as_json, lambda _: print_table([_foreign_row(typed)], f"{package} on {dataset or images}"))
        raise_gate_failures({} if record["gate"]["passed"] else {record["artifact"]: record["gate"]["reasons"]})
        return
    from ddzoo.records import parse_records
    from ddzoo.verification import Gate, VerifySettings, table_row
    from ddzoo.zoo.verify import verify_model

    verified = verify_model(package, artifacts=artifact, out=out, plot=plot,
                            settings=VerifySettings(limit=limit, num_candidates=candidates,
                                                    crosscheck_images=crosscheck, square_images=square,
                                                    strong_images=strong, robust_images=robust,
                                                    **({"batch_size": batch_size} if batch_size else {})),
                            gate=Gate(max_accuracy_drop=max_accuracy_drop, min_rho_ratio=min_rho_ratio,
                                      max_square_drop=max_square_drop, max_robust_drop=max_robust_drop),
                            adversarials=adversarials, trust_adversarials=trust_adversarials, state=state)
    if not verified.main_process:
        return
    note = "" if verified.written else " (read-only: not recorded; pass --out DIR to keep a verified copy)"
    typed = parse_records({"records": verified.records})
    _emit(verified.records, as_json,
          lambda _: print_table([table_row(rec) for rec in typed.values()], f"{verified.package}{note}"))
    verified.raise_if_failed()


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidArgumentError(f"{option} takes comma-separated numbers, e.g. 0.49,0.48,0.45; got {echo(text)}"
                                   ) from None


def _foreign_row(record: ArtifactRecord) -> dict[str, str]:
    decision, square, shape = record.extra["decision_based"], record.square, record.extra["input"]
    row = {"artifact": record.artifact, "input": f"{shape['layout']}, x{shape['scale']:g}"
                                                f"{', normalised' if shape['mean'] else ''}"
                                                f"{', probabilities' if shape['probabilities'] else ''}",
           "accuracy": record.clean.text(digits=2),
           "ρ₂ (HopSkipJump)": f"{decision['rho2']:.4f} (success {100 * decision['success']:.0f} %, "
                               f"{decision['queries_per_image']:.0f} queries/image)"}
    if square:
        row["Square acc."] = (f"{100 * square['accuracy']:.1f} % at ε={square['eps']:.4f} "
                              f"({square['queries_per_image']:.0f} queries/image)")
    if record.extra.get("finite_difference"):
        fd = record.extra["finite_difference"]
        row["ρ₂ (DeepFool, finite differences)"] = f"{fd['rho2']:.4f} ({fd['queries_per_image']:.0f} queries/image)"
    if record.extra.get("gradient_twin"):
        twin = record.extra["gradient_twin"]
        row["ρ₂ (DeepFool, twin)"] = (f"{twin['rho2']:.4f} (HSJ/DeepFool median "
                                      f"{twin['median_decision_over_gradient']:.2f})")
    row["gate"] = "pass" if record.gate.passed else "FAIL"
    return row


@app.command("publish")
def publish(
    package: Annotated[Path, typer.Argument(help="Verified model package folder.")],
    repo: Annotated[str, typer.Option(help="ORG/NAME on the hub.")],
    revision: Annotated[str, typer.Option(help="Branch to publish to.")] = "main",
    hub: Annotated[str, typer.Option(help="'hf' (HF_ENDPOINT) or a directory hub path.")] = "hf",
    allow_unverified: Annotated[bool, typer.Option(
        help="Publish artifacts without a passing verification (the card says so).")] = False,
    skip_unverified: Annotated[bool, typer.Option(
        help="Leave artifacts without a passing verification out of the upload.")] = False,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Verified package folder of the same dataset to compare with in the card (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the model card and manifest, then upload the package (refuses unverified artifacts)."""
    from ddzoo.zoo import publish as publish_package

    result = publish_package(package, repo, revision=revision, hub=hub, allow_unverified=allow_unverified,
                             skip_unverified=skip_unverified, compare=compare or [])
    _emit(result, as_json, lambda r: typer.echo(f"published {r['repo']}@{r['revision']} ({r['commit']}) to {r['url']}"))


@app.command("pull")
def pull(
    reference: Annotated[str, typer.Argument(help="NAME[@REVISION], e.g. lenet-mnist-dd.")],
    format: Annotated[list[str] | None, typer.Option(
        "--format", help="torch | onnx | fp16 | int8 | trt (repeatable; default: all but trt).")] = None,
    offline: Annotated[bool, typer.Option(help="Never touch the network.")] = False,
    hub: Annotated[list[str] | None, typer.Option(help="Search these hubs ('hf' or a directory) instead.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch a model package into the cache (checked against its manifest) and print its path."""
    from ddzoo.zoo import pull as pull_package

    path = pull_package(reference, formats=format, offline=offline or None, hubs=hub, offline_option="--offline")
    _emit({"reference": reference, "path": str(path)}, as_json, lambda r: typer.echo(r["path"]))


@app.command("list")
def list_zoo(
    sort: Annotated[str, typer.Option(
        help="Order by name | accuracy | rho2 | autoattack (the metrics descending).")] = "name",
    dataset: Annotated[str | None, typer.Option(help="Only models of this dataset.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Only this recipe (reference, deep-defense, ...).")] = None,
    min_rho2: Annotated[float | None, typer.Option(help="Only models whose ONNX ρ₂ is at least this.")] = None,
    min_autoattack: Annotated[float | None, typer.Option(
        help="Only models whose AutoAttack ℓ∞ accuracy (fraction) is at least this.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Bundled and cached models with their robustness (ONNX accuracy and ρ₂, the checkpoint's AutoAttack ℓ∞
    accuracy where verified with --strong), filtered and sorted."""
    from ddzoo.zoo import list_models

    rows = list_models(sort=sort, dataset=dataset, recipe=recipe, min_rho2=min_rho2, min_autoattack=min_autoattack)
    headers: dict[str, set[str]] = {}  # per threat model: its figures' labels without n ("AutoAttack ℓ2 0.5")
    for row in rows:
        for key, figure in row["robust"].items():
            headers.setdefault(key, set()).add(figure["label"].split(", n = ")[0])
    columns = {key: " / ".join(sorted(headers[key])) for key in sorted(headers)}
    shown = [_list_row(r, columns) for r in rows]
    _emit(rows, as_json, lambda _: print_table(shown, "ddzoo models") if shown else typer.echo("no models"))


def _list_row(row: dict, threats: dict[str, str]) -> dict[str, str]:
    """A ``zoo list`` table row: the metrics as fractions, each with what measured it in the cell (n; the ℓ∞
    AutoAttack's ε), and a column per threat model any row declares (``threats``: its key and header)."""
    shown = {k: v for k, v in row.items() if k not in ("accuracy", "accuracy_images", "rho2", "autoattack",
                                                          "autoattack_label", "robust", "status")}
    shown["accuracy (fp32 ONNX)"] = "-" if row["accuracy"] is None else (
        f"{row['accuracy']:.4f} (n={row['accuracy_images']:,})")
    shown["rho2"] = "-" if row["rho2"] is None else f"{row['rho2']:.4f}"
    label = row["autoattack_label"] or ""
    shown["AutoAttack ℓ∞ (dataset's ε)"] = "-" if row["autoattack"] is None else (
        f"{row['autoattack']:.4f} ({label.removeprefix('AutoAttack ℓ∞ ').replace(' = ', '=')})")
    for key, header in threats.items():
        figure = row["robust"].get(key)
        shown[header] = "-" if figure is None else f"{figure['accuracy']:.4f} (n={figure['images']:,})"
    return {**shown, "status": row["status"]}


@app.command("info")
def info(reference: Annotated[str, typer.Argument(help="NAME[@REVISION] (cached or bundled).")],
         as_json: JsonOption = False) -> None:
    """Card summary, artifacts and verification status of a model."""
    from ddzoo.zoo import info as model_info

    data = model_info(reference)

    def render(d: dict) -> None:
        typer.echo(f"{d['name']}@{d['revision']}: {d['arch']} on {d['dataset']} ({d['recipe']}), "
                   f"licence {d['license']}\n{d['path']}")
        print_table([{"file": f, "bytes": size, "verification": d["verification"].get(f, "-")}
                for f, size in d["artifacts"].items()], "artifacts")

    _emit(data, as_json, render)


@app.command("site")
def site(
    out: Annotated[Path, typer.Argument(help="Folder for the site: new, empty, or a site built before (replaced).")],
    hub: Annotated[list[Path] | None, typer.Option(
        help="Show this directory hub's packages instead of the bundled and cached ones (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the zoo as a static web site (a leaderboard per dataset, a page per model) that opens from disk."""
    from ddzoo.site import build_site

    built = build_site(out, hubs=hub)
    data = {"index": str(built.out.resolve() / "index.html"), "models": built.models, "pages": built.pages,
            "seconds": round(built.seconds, 2),
            "skipped": [{"name": s.name, "where": s.where, "reason": s.reason} for s in built.skipped]}

    def render(d: dict) -> None:
        for s in d["skipped"]:
            typer.echo(f"left out {s['name']} ({s['where']}): {s['reason'][:200]}", err=True)
        counts = ", ".join(f"{dataset} {n}" for dataset, n in d["models"].items()) or "no models"
        typer.echo(f"wrote {d['pages']} pages ({counts}) in {d['seconds']:.1f} s; open {Path(d['index']).as_uri()}")

    _emit(data, as_json, render)


@app.command("serve")
def serve(
    model: Annotated[str, typer.Argument(help="Model package folder, or a model name to pull (NAME[@REV]).")],
    artifact: Annotated[str | None, typer.Option(help="Artifact inside the package to serve.")] = None,
    backend: Annotated[str, typer.Option(help="auto (TensorRT → ORT CUDA → ORT CPU) | trt | ort | torch.")
                       ] = "auto",
    host: str = "127.0.0.1",
    port: int = 8000,
    name: Annotated[str | None, typer.Option(help="Model name in the API (default: the package's).")] = None,
    max_batch: Annotated[int, typer.Option(help="Dynamic batching: images per backend call.")] = 64,
    max_delay_ms: Annotated[float, typer.Option(help="Dynamic batching: longest wait for a batch.")] = 2.0,
    max_queue: Annotated[int, typer.Option(help="Images waiting at most; beyond, 503 + Retry-After.")] = 1024,
    queue_wait_ms: Annotated[float, typer.Option(
        help="A request finding the queue full waits this long for room before its 503 (0: refuse at once).")
    ] = 100.0,
    instances: Annotated[int, typer.Option(help="Batches computed at once.")] = 1,
    timeout: Annotated[float, typer.Option(help="Per-request timeout (s).")] = 30.0,
    max_body_mb: Annotated[float | None, typer.Option(
        help="Largest request body (MiB); default: --max-batch images of this model as JSON.")] = None,
    grpc_port: Annotated[int, typer.Option(help="KServe v2 gRPC on this port (0: HTTP only).")] = 8001,
    api_key: Annotated[str | None, typer.Option(
        help="Require 'Authorization: Bearer KEY' on every route but health (default: ZOO_API_KEY).")] = None,
    allow_unverified: Annotated[bool, typer.Option(help="Serve an artifact without a passing verification.")
                                ] = False,
) -> None:
    """Serve a verified artifact over HTTP with the KServe v2 / Triton protocol (tritonclient works)."""
    from ddzoo import constants
    from ddzoo.serve import require_serve_extra

    require_serve_extra()
    from ddzoo.serve.app import ServeSettings
    from ddzoo.serve.app import serve as run_server
    settings = ServeSettings(max_batch=max_batch, max_delay_ms=max_delay_ms, max_queue=max_queue,
                             queue_wait_ms=queue_wait_ms,
                             instances=instances, timeout_s=timeout, api_key=api_key or constants.API_KEY,
                             grpc_port=grpc_port or None,
                             max_body_bytes=None if max_body_mb is None else int(max_body_mb * (1 << 20)))
    run_server(model, name, host=host, port=port, artifact=artifact, backend=backend,
               allow_unverified=allow_unverified, settings=settings)


def _render_eval(m: dict) -> None:
    from ddzoo.eval.threat import figure_label
    from ddzoo.stats import Accuracy

    rows = [{"metric": "clean accuracy", "value": f"{m['clean_accuracy']:.4f}"}]
    for space in ("pixel", "normalized"):
        for iterations, stats in m["deepfool"][space].items():
            rows.append({"metric": f"ρ₂ {space}, {iterations} it",
                         "value": f"{stats['rho2']:.4f} (fooled {stats['fooled']:.3f})"})
    box = m["deepfool"]["box_constrained"]
    rows.append({"metric": f"ρ₂ box-constrained, {box['max_iter']} it, fooled images",
                 "value": f"{box['rho2_fooled']:.4f} (fooled {box['fooled']:.3f})"})
    for attack in ("fgs", "bim"):
        for eps, acc in zip(m[attack]["eps"], m[attack]["accuracy"], strict=True):
            rows.append({"metric": f"{attack.upper()} accuracy, ε={eps:.4f}", "value": f"{acc:.4f}"})
    strong = m.get("strong")
    if strong:
        for name, stats in {**strong["min_norm"], "best-of": strong["best_of"]}.items():
            rows.append({"metric": f"min l2 ({name}), {strong['images']} images: mean ‖r‖ / median ‖r‖ / ρ₂",
                         "value": f"{stats['mean_norm']:.4f} / {stats['median_norm']:.4f} / {stats['rho2']:.4f} "
                                  f"(success {stats['success']:.3f})"})
        for norm, result in (strong.get("autoattack") or {}).items():
            if isinstance(result, dict):
                rows.append({"metric": figure_label("AutoAttack", norm, result),
                             "value": Accuracy.from_json(result).fraction_text()})
    for result in (m.get("robust") or {}).values():
        rows.append({"metric": result["label"], "value": Accuracy.from_json(result).fraction_text()})
    entry = m.get("robustbench")
    if entry:
        rows.append({"metric": f"clean accuracy, whole test set (n = {entry['clean']['images']:,})",
                     "value": Accuracy.from_json(entry["clean"]).fraction_text()})
    for check in (m.get("masking") or {}).get("checklist", []):
        rows.append({"metric": f"masking check: {check['check']}",
                     "value": f"{'pass' if check['passed'] else 'FAIL'}: {check['detail']}"})
    print_table(rows, f"{m['checkpoint']} on {m['dataset']} test ({m['images']} images)")


def exit_code(err: ZooError) -> int:
    """The documented exit code of a known error (see the module's table)."""
    if isinstance(err, VerificationFailedError):
        return EXIT_GATE_FAILED
    if isinstance(err, (InvalidArgumentError, UnknownNameError)):
        return EXIT_USAGE
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``zoo``: every failure becomes one line on stderr and a documented exit code (the
    module's table)."""
    try:
        app(args=argv, prog_name="zoo")
    except SystemExit as done:  # typer's normal exit, usage errors included (code 2)
        return done.code if isinstance(done.code, int) else (EXIT_OK if done.code is None else EXIT_ERROR)
    except ZooError as err:
        print(f"zoo: error: {shorten(' '.join(str(err).split()), MESSAGE_CHARS)}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - a bug or an unforeseen failure: still one line, no traceback
        if os.environ.get("ZOO_DEBUG"):
            raise
        first = shorten(str(err).splitlines()[0] if str(err) else "", 300)
        print(f"zoo: internal error: {type(err).__name__}: {first}; run again with ZOO_DEBUG=1 for the "
              "traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
