"""Verify a model by name or path: the one verify path under ``ddzoo.verify`` and ``zoo verify``.

A zoo package (a folder, or a model pulled by name) goes through :func:`~ddzoo.verification.verify_package`; a
pulled or bundled one is read-only, so its records are returned, not written, unless ``out`` gives a copy. An
ONNX file made anywhere goes through :func:`~ddzoo.verification.foreign.verify_onnx` (queries alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ddzoo.errors import InvalidArgumentError, VerificationFailedError
from ddzoo.fileio import building_dir, copy_files
from ddzoo.package import (
    VERIFICATION_FORMAT,
    WEIGHTS,
    load_checkpoint,
    package_artifacts,
    package_files,
    write_verification,
)
from ddzoo.records import GateResult, gate_failure_message, parse_records
from ddzoo.verification import verify_package
from ddzoo.verification.foreign import ForeignGate, ForeignSettings, verify_onnx
from ddzoo.verification.gate import Gate
from ddzoo.verification.plan import VerifySettings
from ddzoo.zoo.cache import is_read_only
from ddzoo.zoo.pull import resolve_package


@dataclass(frozen=True)
class VerificationResult:
    """What :func:`verify_model` (``ddzoo.verify``) measured: the records per artifact and the gate's verdict."""

    package: Path
    passed: bool
    records: dict = field(repr=False)  # artifact -> record, the checkpoint first
    failures: dict[str, list[str]] = field(default_factory=dict)  # artifact -> the gate's reasons
    written: bool = False  # False: a read-only package (cache or bundled), its records returned only
    main_process: bool = True  # False: another rank under torchrun (rank 0 writes and reports)

    def raise_if_failed(self) -> None:
        """Raise :class:`~ddzoo.errors.VerificationFailedError` naming every failed artifact and its reasons."""
        raise_gate_failures(self.failures)


def raise_gate_failures(failures: dict[str, list[str]]) -> None:
    """The one gate-failure error (:func:`~ddzoo.records.gate_failure_message`); nothing if no failures."""
    message = gate_failure_message({name: GateResult(False, tuple(reasons)) for name, reasons in failures.items()})
    if message:
        raise VerificationFailedError(message)


def verify_model(name_or_path: str | Path, *, artifacts: list[str] | None = None,
                 settings: VerifySettings = VerifySettings(), gate: Gate = Gate(), out: Path | str | None = None,
                 plot: Path | str | None = None, offline: bool | None = None,
                 offline_option: str = "ZOO_OFFLINE=1", adversarials: Path | str | None = None,
                 trust_adversarials: bool = False, state: Path | str | None = None) -> VerificationResult:
    """Verify the artifacts of a package given by folder or name, and apply the gate.

    Args:
        name_or_path: a package folder, or ``NAME[@REVISION]`` (pulled, cache first).
        artifacts: paths inside the package (default: every ONNX file and engine).
        settings, gate: what to measure and the thresholds.
        out: verify a copy written here (the way to keep a record of a pulled or bundled model).
        plot: write the ρ₂ histograms and accuracy-vs-ε curves there (PNG).
        offline, offline_option: never touch the network when pulling (default: ``ZOO_OFFLINE``); how the
            caller turns that on, for the messages.
        adversarials, trust_adversarials: where AutoAttack's batches are stored and whether unverified ones
            count (:func:`~ddzoo.verification.verify_package`).
        state: a folder keeping the run's progress, so that a stopped run goes on from its last save.

    Returns:
        the records; the gate's failures are in it, not raised (:meth:`VerificationResult.raise_if_failed`).
    """
    import torch

    from ddzoo.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed(torch.device("cpu"))  # under torchrun: each rank measures, rank 0 copies and writes
    failed: Exception | None = None
    if ctx.is_main:  # rank 0 pulls a named model into the cache first; the others then find it there
        try:
            folder = resolve_package(name_or_path, offline=offline, offline_option=offline_option).folder
        except Exception as error:  # noqa: BLE001 - raised after the barrier, so no rank waits on it
            failed = error
    ctx.barrier()
    if failed is not None:
        raise failed
    if not ctx.is_main:  # (rank 0's failure reaches the others as theirs: the same name, the same cache)
        folder = resolve_package(name_or_path, offline=offline, offline_option=offline_option).folder
    if out is not None:
        if ctx.is_main:
            with building_dir(Path(out)) as staging:
                copy_files(folder, staging, package_files(folder))
        ctx.barrier()
        folder = Path(out)
    write = not is_read_only(folder)
    result = verify_package(folder, artifacts=artifacts, settings=settings, gate=gate, plot=plot, write=write,
                            adversarials=adversarials, trust_adversarials=trust_adversarials, state=state)
    shutdown_distributed(ctx)  # no collectives after this: a rank leaves without tearing down a live group
    if not ctx.is_main:  # its share measured; rank 0 has the records
        return VerificationResult(folder, True, {}, {}, False, main_process=False)
    names = [WEIGHTS, *(artifacts or package_artifacts(folder))]
    records = {name: result["records"][name] for name in names}
    gates = {name: record.gate for name, record in parse_records({"records": records}).items()}
    failures = {name: list(gate.reasons) for name, gate in gates.items() if not gate.passed}
    return VerificationResult(folder, not failures, records, failures, write)


def standard_linf_eps(dataset: str | None) -> float | None:
    """The dataset's standard ℓ∞ budget (AutoAttack's), the default ε of the Square attack on an ONNX file."""
    from ddzoo.eval.threat import STANDARD_EPS

    return None if dataset is None else STANDARD_EPS.get(dataset, {}).get("Linf")


def verify_onnx_file(path: Path | str, *, dataset: str | None = None, images: Path | str | None = None,
                     limit: int | None = None, eps: float | None = None, decision_steps: int = 32,
                     finite_differences: int = 20, twin: str | Path | None = None, gate: ForeignGate | None = None,
                     out: Path | str | None = None, plot: Path | str | None = None, **input_options) -> dict:
    """Verify an ONNX classifier made anywhere with queries alone (HopSkipJump ρ₂, Square robust accuracy).

    Args:
        path: the ``.onnx`` file.
        dataset, images: the test images: a dataset's test set, or labelled images (an .npz or class folders).
        limit: images to verify on (default 100).
        eps: ℓ∞ budget of the Square attack (0: skip; default: :func:`standard_linf_eps` of ``dataset``).
        decision_steps, finite_differences: HopSkipJump iterations; images for finite-difference DeepFool.
        twin: a zoo package or checkpoint (folder or name) of the same model, for gradient-assisted DeepFool.
        gate: the user's thresholds (default: none).
        out: a folder to write ``verification.json`` to. plot: a PNG to write.
        input_options: ``layout``, ``scale``, ``mean``, ``std``, ``output``, ``channels`` of
            :func:`~ddzoo.verification.foreign.verify_onnx` (default: probed).

    Returns:
        the record (gate verdict in ``record["gate"]``, not raised).
    """
    if dataset is None and images is None:
        raise InvalidArgumentError("verifying an ONNX file needs --dataset (cifar10, mnist or fashion-mnist) "
                                   "or --images")
    if eps is None:
        eps = standard_linf_eps(dataset)
    twin_model = None if twin is None else load_checkpoint(resolve_package(twin).folder)[0].eval()
    settings = ForeignSettings(limit=limit or 100, square_eps=eps or None, hsj_steps=decision_steps,
                               finite_differences=finite_differences)
    record = verify_onnx(Path(path), dataset=dataset, images=images, settings=settings, twin=twin_model, plot=plot,
                         gate=gate or ForeignGate(), **input_options)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_verification(out, {"format": VERIFICATION_FORMAT, "records": {record["artifact"]: record}})
    return record
