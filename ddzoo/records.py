"""Typed verification records: the one owner of the JSON in ``verification.json``.

- :class:`DeepFoolSummary`: ρ₂ and success of one DeepFool run (an iteration budget, or box-constrained).
- :class:`GateResult`: a gate's verdict, its reasons and what it measured.
- :class:`ArtifactRecord`: everything measured on one artifact (or on the checkpoint, the baseline), built for
  both by one builder (:func:`ddzoo.verification.pipeline._record`).

Each has one ``to_json`` and one ``from_json``; records already published re-serialise byte-identically (key
order included: a record keeps the order it was read in, a new one the layout of :data:`CHECKPOINT_KEYS` /
:data:`ARTIFACT_KEYS`). Fields without a typed field of their own (the per-image flags, read by
:meth:`ArtifactRecord.correct_flags`, included) stay in ``extra`` as written.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ddzoo.errors import CheckpointError, echo, shorten
from ddzoo.stats import Accuracy, PairedDrop, count

if TYPE_CHECKING:
    import torch

DEEPFOOL_ITERATIONS = (5, 50)  # the budgets every evaluation and verification reports
HEADLINE_ITERATIONS = max(DEEPFOOL_ITERATIONS)  # the ρ₂ that cards, listings and served metadata quote
BOX_CONSTRAINED = "box_constrained"  # the key of the box-constrained run beside the budgets
CLEAN_CORRECT = "clean_correct"  # the key of which images the artifact classified right (:func:`pack_flags`)

# The JSON layout of a new record (a record read from disk keeps its own).
CHECKPOINT_KEYS = ("images", "clean_accuracy", "clean_accuracy_ci95", CLEAN_CORRECT, "top1_agreement", "deepfool",
                   "timings", "fgs", "bim", "method", "artifact", "sha256", "runtime", "rho2_ratio", "dataset", "split",
                   "settings", "eps_ref", "versions", "gate", "square", "robust", "strong")
ARTIFACT_KEYS = ("images", "clean_accuracy", "clean_accuracy_ci95", CLEAN_CORRECT, "top1_agreement", "deepfool",
                 "timings", "fgs", "bim", "method", "accuracy_drop", "square", "robust", "crosscheck", "artifact",
                 "sha256", "bytes", "runtime", "dataset", "split", "settings", "eps_ref", "versions", "rho2_ratio",
                 "gate", "verified_at")
_CLEAN = ("images", "clean_accuracy", "clean_accuracy_ci95")


def pack_flags(flags: torch.Tensor) -> str:
    """Per-image flags as text: base64 of their bits, eight to a byte, the first image in the highest bit
    (:func:`numpy.packbits`); 10,000 images take 1,668 characters."""
    return base64.b64encode(np.packbits(flags.numpy().astype(bool)).tobytes()).decode("ascii")


def unpack_flags(text: Any, count: int) -> torch.Tensor:
    """The ``count`` flags :func:`pack_flags` wrote; a :class:`ValueError` for anything else (the length is
    checked before decoding, so a crafted record cannot make it allocate more)."""
    size = -(-count // 8)
    if not isinstance(text, str) or len(text) != 4 * -(-size // 3):
        raise ValueError(f"expected the base64 of {count} packed flags")
    try:
        packed = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(packed) != size:
        raise ValueError(f"expected {size} bytes of flags, got {len(packed)}")
    bits = np.unpackbits(packed)
    if bits[count:].any():
        raise ValueError("bits set beyond the last image")
    import torch

    return torch.from_numpy(bits[:count].view(bool))


@dataclass(frozen=True)
class DeepFoolSummary:
    """ρ₂ (mean ‖r‖₂/‖x‖₂ over all images and over the fooled ones), fooled fraction and mean iterations of one
    DeepFool run; a box-constrained run also has its budget and the share still fooled after 8-bit rounding."""

    rho2: float
    rho2_fooled: float
    fooled: float
    mean_iterations: float
    max_iter: int | None = None
    fooled_8bit: float | None = None

    @classmethod
    def measure(cls, norms: torch.Tensor, x_norms: torch.Tensor, fooled: torch.Tensor, iterations: torch.Tensor,
                *, max_iter: int | None = None, fooled_8bit: float | None = None) -> DeepFoolSummary:
        """From per-image ‖r‖₂, ‖x‖₂, fooled flags and iterations."""
        rho = norms / x_norms
        return cls(rho.mean().item(), rho[fooled].mean().item() if fooled.any() else float("nan"),
                   fooled.float().mean().item(), iterations.float().mean().item(), max_iter, fooled_8bit)

    @classmethod
    def from_json(cls, data: dict) -> DeepFoolSummary:
        budget = None if data.get("max_iter") is None else count(data["max_iter"], "max_iter")
        return cls(float(data["rho2"]), float(data["rho2_fooled"]), float(data["fooled"]),
                   float(data["mean_iterations"]), budget,
                   None if data.get("fooled_8bit") is None else float(data["fooled_8bit"]))

    def to_json(self) -> dict:
        budget = {} if self.max_iter is None else {"max_iter": self.max_iter}
        rounded = {} if self.fooled_8bit is None else {"fooled_8bit": self.fooled_8bit}
        return {**budget, "rho2": self.rho2, "rho2_fooled": self.rho2_fooled, "fooled": self.fooled,
                "mean_iterations": self.mean_iterations, **rounded}


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict: passed or not, the reasons it failed, and ``details`` (what it measured and its
    thresholds, or a note) as recorded."""

    passed: bool
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> GateResult:
        return cls(data["passed"] is True, tuple(str(r) for r in data.get("reasons", ())),
                   {k: v for k, v in data.items() if k not in ("passed", "reasons")})

    def to_json(self) -> dict:
        return {"passed": self.passed, "reasons": list(self.reasons), **self.details}


def gate_failure_message(gates: Mapping[str, GateResult]) -> str | None:
    """``gate failed for NAME: reason, reason; NAME: ...`` for the failed ones among ``gates``, or None."""
    failed = [f"{name}: {', '.join(gate.reasons)}" for name, gate in gates.items() if not gate.passed]
    return f"gate failed for {'; '.join(failed)}" if failed else None


def _optional(value: Any, parse) -> Any:
    return None if value is None else parse(value)


@dataclass(frozen=True)
class ArtifactRecord:
    """One artifact's verification record (the checkpoint's is the baseline: ratio 1, no paired drop).

    ``fgs`` / ``bim``: ``{"eps": [...], "accuracy": [...]}`` on the ε grid; ``square``: the query-only Square
    record (:attr:`square_accuracy`, :attr:`square_drop`); ``robust``: robust accuracy per declared threat model
    (AutoAttack and Square at its budget, :mod:`ddzoo.verification.robust`); ``crosscheck``, ``strong``: as
    measured; ``extra``:
    every other field (dataset, split, settings, eps_ref, versions, timings, method, bytes, verified_at ...).
    """

    artifact: str
    sha256: str
    clean: Accuracy
    runtime: dict[str, Any]
    gate: GateResult
    deepfool: dict[str, DeepFoolSummary] | None = None
    top1_agreement: float | None = None
    rho2_ratio: float | None = None
    fgs: dict[str, list[float]] | None = None
    bim: dict[str, list[float]] | None = None
    accuracy_drop: PairedDrop | None = None
    square: dict[str, Any] | None = None
    crosscheck: dict[str, Any] | None = None
    strong: dict[str, Any] | None = None
    robust: dict[str, dict[str, Any]] | None = None  # per threat model key (ddzoo.verification.robust)
    extra: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ARTIFACT_KEYS  # the JSON key order

    @property
    def precision(self) -> str:
        return str(self.runtime["precision"])

    @property
    def headline_rho2(self) -> float | None:
        """ρ₂ at :data:`HEADLINE_ITERATIONS` (None when the record has no such budget)."""
        run = (self.deepfool or {}).get(str(HEADLINE_ITERATIONS))
        return None if run is None else run.rho2

    @property
    def budgets(self) -> dict[str, DeepFoolSummary]:
        """The unconstrained DeepFool runs per iteration budget, as recorded (``"5"``, ``"50"`` ...)."""
        return {key: run for key, run in (self.deepfool or {}).items() if key.isdigit()}

    def correct_flags(self) -> torch.Tensor | None:
        """Per image of the record's ``images``, whether the artifact classified it right (None in a record
        written before ddzoo kept them); a :class:`CheckpointError` when they are malformed or disagree with
        ``clean_accuracy``."""
        text = self.extra.get(CLEAN_CORRECT)
        if text is None:
            return None
        where = f"verification.json: {echo(self.artifact)}: {CLEAN_CORRECT}"
        try:
            flags = unpack_flags(text, self.clean.images)
            right = round(self.clean.accuracy * self.clean.images)
        except (ValueError, OverflowError) as err:  # OverflowError: an accuracy of Infinity
            raise CheckpointError(f"{where}: {err}; run 'zoo verify' again") from None
        if int(flags.sum()) != right:
            raise CheckpointError(f"{where}: {int(flags.sum())} of {self.clean.images} images right, but "
                                  f"clean_accuracy says {self.clean.accuracy}; run 'zoo verify' again")
        return flags

    @property
    def square_accuracy(self) -> Accuracy | None:
        return None if not self.square else Accuracy.from_json(self.square)

    @property
    def square_drop(self) -> PairedDrop | None:
        drop = (self.square or {}).get("robust_drop")
        return None if not drop else PairedDrop.from_json(drop)

    @classmethod
    def from_json(cls, data: Any, where: str = "verification.json") -> ArtifactRecord:
        """Parse one record; a :class:`CheckpointError` naming ``where`` when it lacks what readers need."""
        try:
            typed = {"artifact": str(data["artifact"]), "sha256": str(data["sha256"]),
                     "clean": Accuracy.from_clean_json(data), "runtime": dict(data["runtime"]),
                     "gate": GateResult.from_json(data["gate"]),
                     "deepfool": _optional(data.get("deepfool"),
                                           lambda d: {str(k): DeepFoolSummary.from_json(v) for k, v in d.items()}),
                     "top1_agreement": _optional(data.get("top1_agreement"), float),
                     "rho2_ratio": _optional(data.get("rho2_ratio"), float),
                     "fgs": data.get("fgs"), "bim": data.get("bim"),
                     "accuracy_drop": _optional(data.get("accuracy_drop"), PairedDrop.from_json),
                     "square": data.get("square"), "crosscheck": data.get("crosscheck"), "strong": data.get("strong"),
                     "robust": data.get("robust")}
            named = {*_CLEAN, *(f for f in typed if f != "clean")}
            return cls(**typed, extra={k: v for k, v in data.items() if k not in named}, order=tuple(data))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{where}: an incomplete verification record ({type(err).__name__}: "
                                  f"{shorten(str(err), 80)}); run 'zoo verify' again") from None

    def to_json(self) -> dict:
        values = {**self.clean.to_clean_json(), "top1_agreement": self.top1_agreement,
                  "deepfool": _optional(self.deepfool, lambda d: {k: v.to_json() for k, v in d.items()}),
                  "fgs": self.fgs, "bim": self.bim,
                  "accuracy_drop": _optional(self.accuracy_drop, PairedDrop.to_json), "square": self.square,
                  "crosscheck": self.crosscheck, "strong": self.strong, "robust": self.robust,
                  "artifact": self.artifact,
                  "sha256": self.sha256, "runtime": self.runtime, "rho2_ratio": self.rho2_ratio,
                  "gate": self.gate.to_json(), **self.extra}
        ordered = {key: values.get(key) for key in self.order}
        return {**ordered, **{k: v for k, v in values.items() if k not in ordered and v is not None}}


def parse_records(verification: dict, where: str = "verification.json") -> dict[str, ArtifactRecord]:
    """The typed records of a ``verification.json``'s contents (``{"records": {...}}``; none if absent), by
    artifact."""
    return {name: ArtifactRecord.from_json(record, f"{where}: {name}")
            for name, record in verification.get("records", {}).items()}
