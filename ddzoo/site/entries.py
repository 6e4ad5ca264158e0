"""What the site shows of each model package, typed: read through the owners of the on-disk formats.

Files are read only by :mod:`ddzoo.package` (config, manifest, verification records, artifact status) and the
packages found by :func:`ddzoo.zoo.local_packages` (what ``zoo list`` sees); the headline figures come from
:class:`ddzoo.records.ArtifactRecord`, the same ones ``zoo list``, the card and the service quote. Every package
may be crafted: a field of the wrong type becomes a missing figure, never an error or an unchecked string in a
file name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddzoo.errors import CheckpointError, InvalidArgumentError, UnknownNameError, ZooError
from ddzoo.eval.threat import NORMS, ThreatModel
from ddzoo.fileio import sha256_file
from ddzoo.names import validate_name, validate_revision
from ddzoo.package import (
    CARD,
    CONFIG,
    MANIFEST,
    ONNX,
    WEIGHTS,
    ModelConfig,
    deployment_rank,
    precision_of,
    read_manifest,
    read_model_config,
    read_verification,
    verification_status,
)
from ddzoo.records import ArtifactRecord
from ddzoo.zoo import LocalPackage, integrity, local_packages

MAX_CARD_BYTES = 1 << 20  # a model card larger than this is not rendered
DEFENCE_NAMES = {"reference": "none (reference)", "deep-defense": "Deep Defense", "adversarial": "adversarial training",
                 "parseval": "Parseval"}
ARTIFACT_KINDS = {"fp32": "fp32", "fp16": "fp16", "int8": "INT8", "trt": "TensorRT"}  # filter key → label


def as_number(value: Any) -> float | None:
    """A finite real number from a record, else None (booleans, strings and NaN are not figures)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Figure:
    """A measured number with its 95 % interval (where recorded) and the number of test images behind it."""

    value: float
    images: int | None = None
    ci95: tuple[float, float] | None = None

    @classmethod
    def read(cls, record: Any, key: str = "accuracy", ci_key: str = "ci95") -> Figure | None:
        """``record[key]`` with ``record[ci_key]`` and ``record["images"]``; None where the value is missing."""
        record = as_dict(record)
        value = as_number(record.get(key))
        if value is None:
            return None
        interval = record.get(ci_key)
        ci95 = None
        if isinstance(interval, (list, tuple)) and len(interval) == 2:
            low, high = (as_number(v) for v in interval)
            ci95 = (low, high) if low is not None and high is not None else None
        return cls(value, _count(record.get("images")), ci95)


@dataclass(frozen=True, order=True)
class RobustColumn:
    """An attack at a fixed budget: the column a robust accuracy belongs to."""

    attack: str
    norm: str
    eps: float

    @property
    def key(self) -> str:
        """A stable identifier (HTML ids, sort keys)."""
        return f"{self.attack}-{self.norm}-{self.eps:.6g}".lower().replace(".", "_")

    @property
    def budget(self) -> str:
        """``ℓ∞ ε = 8/255`` (ℓ∞ budgets that are whole 255ths of the pixel range are written so)."""
        try:
            eps = ThreatModel(self.norm, self.eps).eps_text
        except ZooError:  # a norm or ε the zoo would not measure at: shown as recorded
            eps = f"{self.eps:g}"
        return f"{NORMS.get(self.norm, self.norm)} ε = {eps}"


@dataclass(frozen=True)
class Artifact:
    """A deployable file of the package (or one verified and then left out) and its gate verdict."""

    file: str
    kind: str  # a key of ARTIFACT_KINDS
    label: str  # e.g. "INT8", "TensorRT fp16"
    status: str  # pass | fail | stale | unverified | not shipped
    size: int | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """One model of the site: identity, leaderboard figures, and the records its page shows."""

    slug: str  # the page's file name stem: a validated model name, unique in the site
    name: str
    revision: str
    where: str
    folder: Path
    config: ModelConfig
    params: int | None
    clean: Figure | None  # clean accuracy of the fp32 ONNX artifact, from its verification record
    rho2: Figure | None  # DeepFool ρ₂ (the headline iterations) of the fp32 ONNX artifact
    best_of: Figure | None  # the checkpoint's best-of minimal mean ‖r‖₂ (images = the sample it ran on)
    robust: dict[RobustColumn, Figure]
    artifacts: tuple[Artifact, ...]
    files: tuple[tuple[str, int, str], ...]  # manifest: (file, bytes, sha256)
    records: dict[str, dict] = field(repr=False)

    @property
    def dataset(self) -> str:
        return self.config.dataset

    @property
    def defence(self) -> str:
        return self.config.recipe_name

    @property
    def defence_name(self) -> str:
        return DEFENCE_NAMES.get(self.defence, self.defence)

    @property
    def passed(self) -> tuple[str, ...]:
        """The artifact kinds with at least one artifact passing the gate for its current bytes."""
        return tuple(k for k in ARTIFACT_KINDS if any(a.kind == k and a.status == "pass" for a in self.artifacts))

    @property
    def reference(self) -> str:
        """``NAME`` or ``NAME@REVISION`` for ``zoo pull`` and ``ddzoo.load``."""
        return self.name if self.revision == "main" else f"{self.name}@{self.revision}"

    @property
    def card(self) -> Path:
        return self.folder / CARD


@dataclass(frozen=True)
class Skipped:
    """A package the site leaves out, and why (shown on the index page)."""

    name: str
    where: str
    reason: str


def _kind(file: str) -> tuple[str, str]:
    precision = precision_of(file)
    if file.endswith(".plan"):
        return "trt", f"TensorRT {precision}"
    return precision, ARTIFACT_KINDS[precision]


def _artifacts(folder: Path, records: dict, sizes: dict[str, int]) -> tuple[Artifact, ...]:
    status = verification_status(folder)
    found = []
    for file, verdict in status.items():
        if file == WEIGHTS:
            continue
        gate = as_dict(as_dict(records.get(file)).get("gate"))
        reasons = tuple(str(r) for r in gate.get("reasons", ()) if isinstance(r, str)) if verdict == "fail" else ()
        found.append(Artifact(file, *_kind(file), verdict, sizes.get(file), reasons))
    for file, record in sorted(records.items()):  # verified, failed the gate and left out of the package
        gate = as_dict(as_dict(record).get("gate"))
        shipped = file in status or file == WEIGHTS
        if shipped or gate.get("passed") is not False or not file.endswith((".onnx", ".plan")):
            continue
        reasons = tuple(str(r) for r in gate.get("reasons", ()) if isinstance(r, str))
        found.append(Artifact(file, *_kind(file), "not shipped", None, reasons))
    return tuple(sorted(found, key=lambda a: deployment_rank(a.file)))


def _robust(checkpoint: dict) -> dict[RobustColumn, Figure]:
    """The robust accuracies at fixed budgets in the records: AutoAttack on the checkpoint at the dataset's
    standard budgets (``--strong``) and at each declared threat model (``robust``; it wins where both are)."""
    strong = as_dict(checkpoint.get("strong"))
    found = {}
    declared = [(as_dict(figure).get("norm"), figure) for figure in as_dict(checkpoint.get("robust")).values()]
    for norm, result in [*as_dict(strong.get("autoattack")).items(), *declared]:
        eps = as_number(as_dict(result).get("eps"))
        figure = Figure.read(result)
        if norm in NORMS and eps is not None and figure is not None:
            found[RobustColumn("AutoAttack", norm, eps)] = figure
    return found


def _headline(record: Any) -> tuple[Figure | None, Figure | None]:
    """Clean accuracy and headline ρ₂ of one record (:class:`~ddzoo.records.ArtifactRecord`), with its n."""
    try:
        typed = ArtifactRecord.from_json(record)
    except CheckpointError:
        return None, None
    clean = Figure.read(typed.clean.to_json())
    rho2 = as_number(typed.headline_rho2)
    return clean, (Figure(rho2, clean.images if clean else None) if rho2 is not None else None)


def _params(arch: str) -> int | None:
    from ddzoo.models import get_model_spec

    try:
        return get_model_spec(arch).num_params
    except UnknownNameError:
        return None


def read_entry(package: LocalPackage, slug: str) -> ModelEntry:
    """The site's view of one package folder (raises :class:`~ddzoo.errors.ZooError` or ``OSError`` when it
    cannot be read)."""
    folder = package.folder
    config = read_model_config(folder)
    manifest = read_manifest(folder)
    records = {str(k): v for k, v in read_verification(folder)["records"].items() if isinstance(v, dict)}
    files = tuple((name, entry["size"], entry["sha256"]) for name, entry in sorted(manifest["files"].items()))
    sizes = {name: size for name, size, _ in files}
    checkpoint = as_dict(records.get(WEIGHTS))
    best = as_dict(as_dict(checkpoint.get("strong")).get("best_of"))
    strong_images = _count(as_dict(checkpoint.get("strong")).get("images"))
    mean_norm = as_number(best.get("mean_norm"))
    clean, rho2 = _headline(records.get(ONNX))
    return ModelEntry(slug=slug, name=package.name, revision=package.revision, where=package.where, folder=folder,
                      config=config, params=_params(config.arch), clean=clean, rho2=rho2,
                      best_of=Figure(mean_norm, strong_images) if mean_norm is not None else None,
                      robust=_robust(checkpoint), artifacts=_artifacts(folder, records, sizes), files=files,
                      records=records)


def read_entries(hubs: list[Path | str] | None = None) -> tuple[list[ModelEntry], list[Skipped]]:
    """Every package ``zoo list`` sees (or those of the directory ``hubs``), one entry per distinct content.

    A package found twice with the same manifest (bundled, and pulled into the cache) is one entry; two
    different packages of one name get the pages ``NAME`` and ``NAME--<content id>``.

    Args:
        hubs: directory hubs to read instead of the bundled and cached packages.

    Returns:
        The entries sorted by dataset and name, and the packages left out with the reason: an unsafe name,
        revision or dataset name, files that fail their manifest, records that cannot be read.
    """
    entries: list[ModelEntry] = []
    skipped: list[Skipped] = []
    seen: dict[str, int] = {}
    slugs: set[str] = set()
    for package in local_packages(hubs):
        try:
            validate_name(package.name)
        except InvalidArgumentError:
            skipped.append(Skipped(package.name[:80], package.where, "unsafe model name"))
            continue
        try:
            validate_revision(package.revision)
        except InvalidArgumentError:
            skipped.append(Skipped(package.name, package.where, f"unsafe revision {package.revision[:80]!r}"))
            continue
        status = integrity(package.folder).replace(str(package.folder), package.name)  # no local paths
        if status != "ok":
            skipped.append(Skipped(package.name, package.where, status))
            continue
        content = sha256_file(package.folder / MANIFEST)
        if content in seen:
            first = entries[seen[content]]
            if first.name == package.name:
                entries[seen[content]] = _also_at(first, package.where)
                continue
        slug = package.name if package.name not in slugs else f"{package.name}--{content[:12]}"
        try:
            entry = read_entry(package, slug)
        except (ZooError, OSError, KeyError, TypeError, ValueError) as err:
            skipped.append(Skipped(package.name, package.where,
                                   f"unreadable: {str(err).replace(str(package.folder), package.name)}"))
            continue
        try:
            validate_name(entry.dataset, "dataset name")
        except InvalidArgumentError:
            skipped.append(Skipped(package.name, package.where, f"unsafe dataset name in {CONFIG}"))
            continue
        seen[content] = len(entries)
        slugs.add(slug)
        entries.append(entry)
    entries.sort(key=lambda e: (e.dataset, e.name, e.slug))
    return entries, skipped


def _also_at(entry: ModelEntry, where: str) -> ModelEntry:
    from dataclasses import replace

    places = entry.where.split(", ")
    return entry if where in places else replace(entry, where=", ".join([*places, where]))
