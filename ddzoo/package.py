"""The model package on disk — the one owner of its file names, config, records and artifact lookup.

A checkpoint (``zoo train``) and a model package (``zoo export``, the zoo's unit) share this layout::

    config.json          ModelConfig: architecture, dataset, classes, input shape, normalisation, recipe ...
    model.safetensors    weights (never pickle)
    model.onnx, model.fp16.onnx, model.int8.onnx        ONNX artifacts by precision
    engines/<trt version>/sm<cc>/model.<precision>.plan TensorRT engines (not portable)
    export.json, verification.json, manifest.json, README.md

Every stage reads and writes these through this module (layers: errors, constants, fileio, names → data,
models, attacks → **package** → runtime → train, eval → export → verify → zoo → serve, cli). Files from
elsewhere are hostile: JSON files are size-bounded before parsing and their shapes checked once, here.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ddzoo import __version__
from ddzoo.data import get_dataset_info
from ddzoo.errors import CheckpointError, ChecksumError, InvalidArgumentError, echo, shorten
from ddzoo.fileio import atomic_write_bytes, sha256_file, write_json
from ddzoo.models import Classifier, create_model
from ddzoo.names import validate_package_path
from ddzoo.records import ArtifactRecord

# File names (the only place they are spelled).
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
ONNX_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
ONNX = ONNX_FILES["fp32"]
EXPORT_RECORD = "export.json"
VERIFICATION = "verification.json"
MANIFEST = "manifest.json"
CARD = "README.md"
EPS_REF = "eps_ref.json"  # beside a reference checkpoint: its ε_ref, found once by `zoo eval`
ENGINES = "engines"
PRECISIONS = tuple(ONNX_FILES)

# Artifact formats (the only vocabulary of them): what ``load``, ``pull`` and ``export`` call an artifact kind.
ONNX_FORMATS = {"onnx": "fp32", "fp16": "fp16", "int8": "int8"}  # format -> precision of its ONNX file
FORMATS = ("torch", *ONNX_FORMATS, "trt")  # ddzoo.load / zoo pull --format
DEFAULT_FORMATS = ("torch", *ONNX_FORMATS)  # a pull without --format: all but engines
ENGINE_FORMATS = {f"trt-{precision}": fmt for fmt, precision in ONNX_FORMATS.items()}  # zoo export: -> its ONNX
EXPORT_FORMATS = (*ONNX_FORMATS, *ENGINE_FORMATS)  # zoo export --formats, in build order
DEFAULT_EXPORT_FORMATS = tuple(ONNX_FORMATS)
FORMAT_FILES = {"torch": [WEIGHTS], **{fmt: [ONNX_FILES[p]] for fmt, p in ONNX_FORMATS.items()},
                "trt": list(ONNX_FILES.values())}  # the files a pull of each format fetches (trt: + engines)
METADATA_FILES = [CONFIG, VERIFICATION, CARD, EXPORT_RECORD]  # fetched by every pull

CONFIG_FORMAT = "ddzoo-checkpoint/1"
VERIFICATION_FORMAT = "ddzoo-verification/1"
MANIFEST_FORMAT = "ddzoo-manifest/1"
# The most bytes ddzoo reads of a metadata file: checked before parsing, and at pull time against the sizes a
# manifest declares, so a package that could not be read is never fetched. Any other .json: JSON_BYTES.
MAX_METADATA_BYTES = {CONFIG: 1 << 20, MANIFEST: 1 << 20, VERIFICATION: 16 << 20, EXPORT_RECORD: 16 << 20,
                      CARD: 1 << 20}
JSON_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_limit(name: str) -> int | None:
    """The most bytes ddzoo reads of the package file ``name`` (a path inside the package); None: an artifact,
    bounded only by its manifest entry."""
    if name in MAX_METADATA_BYTES:
        return MAX_METADATA_BYTES[name]
    return JSON_BYTES if name.endswith(".json") else None


def read_json(path: Path, what: str, fix: str, shown: str | None = None) -> Any:
    """Parse a package's JSON file, refusing one over its size bound before reading it; messages name it as
    ``shown`` (default: its path)."""
    limit = read_limit(path.name) or JSON_BYTES
    shown = shown or str(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise CheckpointError(f"{shown}: {size:,} bytes, over the {limit:,}-byte limit of a {what}; {fix}")
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise CheckpointError(f"{shown}: not valid JSON ({shorten(reason, 200)}); {fix}") from err
    except OSError as err:
        raise CheckpointError(f"{shown}: unreadable {what} ({err.strerror or err}); {fix}") from err


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ModelConfig:
    """``config.json``, typed: what every stage needs to rebuild, run and describe the model.

    ``extra`` keeps the other recorded fields (seed, metrics, eps_ref, versions ...) as they were written.
    """

    arch: str
    dataset: str
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recipe_name(self) -> str:
        return str(self.recipe.get("name", "reference"))

    @property
    def eps_ref(self) -> dict[str, float] | None:
        stored = self.extra.get("eps_ref")
        return stored if isinstance(stored, dict) else None

    @classmethod
    def from_dict(cls, data: Any, where: Path | str) -> ModelConfig:
        """Check the fields ddzoo relies on (once, here) and build the typed config."""
        def bad(reason: str) -> CheckpointError:
            return CheckpointError(f"{where}: not a {CONFIG_FORMAT} config ({reason}); re-create the checkpoint")

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        missing = [key for key in ("format", "arch", "dataset") if key not in data]
        if missing or data.get("format") != CONFIG_FORMAT:
            raise bad(f"missing {missing or 'format'}")
        try:
            norm = data.get("normalization") or {}
            info = None if "classes" in data and "input_shape" in data else get_dataset_info(str(data["dataset"]))
            config = cls(arch=str(data["arch"]), dataset=str(data["dataset"]),
                         classes=tuple(str(c) for c in (data["classes"] if info is None else info.classes)),
                         input_shape=tuple(int(v) for v in (data["input_shape"] if info is None  # type: ignore[arg-type]
                                                            else info.image_shape)),
                         mean=tuple(float(v) for v in norm.get("mean", ())),
                         std=tuple(float(v) for v in norm.get("std", ())),
                         recipe=dict(data.get("recipe") or {}),
                         extra={k: v for k, v in data.items() if k not in _TYPED})
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise bad(f"{type(err).__name__}: {err}") from err
        channels = config.input_shape[0] if len(config.input_shape) == 3 else -1
        if min(config.input_shape, default=0) < 1 or channels < 1 or not config.classes:
            raise bad(f"input_shape {list(config.input_shape)}, {len(config.classes)} classes")
        if len(config.mean) != channels or len(config.std) != channels or min(config.std) <= 0:
            raise bad(f"normalization needs {channels} means and positive stds")
        return config

    def to_dict(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, "arch": self.arch, "dataset": self.dataset, "classes": list(self.classes),
                "input_shape": list(self.input_shape),
                "normalization": {"mean": list(self.mean), "std": list(self.std), "input_range": [0.0, 1.0]},
                "recipe": self.recipe, **self.extra}


_TYPED = {"format", "arch", "dataset", "classes", "input_shape", "normalization", "recipe"}


def read_config(folder: Path | str) -> dict[str, Any]:
    """The checked ``config.json`` of a checkpoint or package, as a dict (see :func:`read_model_config`)."""
    return read_model_config(folder).to_dict()


def read_model_config(folder: Path | str) -> ModelConfig:
    """The typed ``config.json`` of a checkpoint or package folder."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG}; pass a checkpoint folder made by 'zoo train'")
    return ModelConfig.from_dict(read_json(path, "config", "re-create the checkpoint"), path)


def write_config(folder: Path | str, config: dict[str, Any] | ModelConfig) -> None:
    """Write ``config.json`` atomically (checked first)."""
    data = config.to_dict() if isinstance(config, ModelConfig) else config
    ModelConfig.from_dict(data, Path(folder) / CONFIG)
    write_json(Path(folder) / CONFIG, data)


# ------------------------------------------------------------------------------------------ checkpoints
def package_versions() -> dict[str, str]:
    return {"ddzoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically."""
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


def save_checkpoint(folder: Path | str, model: Classifier, config: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``config`` (completed with architecture, normalisation, versions)."""
    folder = Path(folder)
    info = get_dataset_info(config["dataset"])
    full = {
        "format": CONFIG_FORMAT,
        "arch": model.arch,
        "dataset": info.name,
        "classes": list(info.classes),
        "input_shape": list(info.image_shape),
        "normalization": {"mean": model.normalize.mean.flatten().tolist(),
                          "std": model.normalize.std.flatten().tolist(), "input_range": [0.0, 1.0]},
        **config,
        "versions": package_versions(),
    }
    save_tensors(folder / WEIGHTS, model.state_dict())
    write_config(folder, full)
    return folder


def load_checkpoint(folder: Path | str, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the model of a checkpoint or package folder in eval mode, with its config."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS}; the checkpoint is incomplete, re-create it")
    model = create_model(config["arch"], config["dataset"])
    try:
        state = load_file(str(weights), device=str(device))
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"{weights}: cannot load weights into {config['arch']} ({err})") from err
    return model.to(device).eval(), config


def read_eps_ref(folder: Path | str) -> dict[str, Any] | None:
    """A checkpoint's stored ε_ref record (``eps_ref.json``, or the ``eps_ref`` field of its config), or None."""
    path = Path(folder) / EPS_REF
    if path.is_file():
        stored = read_json(path, "eps_ref record", f"delete {path} and run 'zoo eval' again")
    else:
        stored = read_model_config(folder).eps_ref
    if not isinstance(stored, dict) or not all(isinstance(stored.get(a), (int, float)) for a in ("fgs", "bim")):
        return None
    return stored


def write_eps_ref(folder: Path | str, record: dict[str, Any]) -> bool:
    """Store ``record`` as the checkpoint's ``eps_ref.json`` (never touching its config); False if the folder is
    not writable."""
    path = Path(folder) / EPS_REF
    if not os.access(Path(folder), os.W_OK):
        return False
    write_json(path, record)
    return True


# ---------------------------------------------------------------------------------------------- artifacts
def engine_dir(package: Path, trt_version: str, capability: tuple[int, int]) -> Path:
    """Where engines for one TensorRT version and GPU live inside a package."""
    return package / ENGINES / trt_version / f"sm{capability[0]}{capability[1]}"


def engine_name(precision: str) -> str:
    return f"model.{precision}.plan"


def package_artifacts(package: Path | str) -> list[str]:
    """The deployable files of a package: its ONNX files and its engines, as paths inside it, in
    :func:`deployment_rank` order."""
    package = Path(package)
    found = [p.name for p in package.glob("*.onnx")]
    found += [p.relative_to(package).as_posix() for p in package.glob(f"{ENGINES}/*/*/*.plan")]
    return sorted(found, key=deployment_rank)


def deployment_rank(name: str) -> tuple[int, int, str]:
    """Where a file stands in every listing of artifacts and records: the checkpoint, the ONNX files fp32 → fp16
    → INT8, then the engines, then anything else, each by precision and then name."""
    precision = PRECISIONS.index(precision_of(name))
    if name == WEIGHTS:
        return 0, 0, name
    if name in ONNX_FILES.values():
        return 1, precision, name
    return (2 if name.startswith(f"{ENGINES}/") else 3), precision, name


def in_deployment_order(records: dict[str, Any]) -> dict[str, Any]:
    """``records`` (by file name) ordered by :func:`deployment_rank`."""
    return {name: records[name] for name in sorted(records, key=lambda n: deployment_rank(str(n)))}


def check_format(format: str) -> str:
    """``format`` if it is one of :data:`FORMATS`, else an error listing them."""
    if format not in FORMATS:
        raise InvalidArgumentError(f"unknown format {echo(format)}; choose one of: {', '.join(FORMATS)}")
    return format


def needed_files(manifest: dict, formats: list[str] | None) -> list[str]:
    """The manifest's files a pull of ``formats`` needs (metadata always; engines with ``trt``).
    ``None``: every torch and ONNX artifact the package has."""
    listed = manifest["files"]
    if formats is None:
        formats = [f for f in DEFAULT_FORMATS if any(name in listed for name in FORMAT_FILES[f])]
    unknown = [f for f in formats if f not in FORMAT_FILES]
    if unknown:
        raise InvalidArgumentError(f"unknown format {echo(unknown)}; choose from: {', '.join(FORMAT_FILES)}")
    wanted = [f for f in METADATA_FILES if f in listed]
    for fmt in formats:
        files = [f for f in FORMAT_FILES[fmt] if f in listed]
        if fmt == "trt":
            files += [f for f in listed if f.startswith(f"{ENGINES}/")]
        if not files:
            raise InvalidArgumentError(f"this package has no {fmt} artifact; it has: {', '.join(sorted(listed))}")
        wanted += files
    return list(dict.fromkeys(wanted))


def artifact_for(package: Path | str, precision: str = "fp32") -> Path:
    """The ONNX artifact of ``precision`` (``fp32``, ``fp16``, ``int8``); an error listing what the package has."""
    if precision not in ONNX_FILES:
        raise InvalidArgumentError(f"unknown precision {echo(precision)}; choose one of: {', '.join(ONNX_FILES)}")
    path = Path(package) / ONNX_FILES[precision]
    if not path.is_file():
        raise InvalidArgumentError(f"{package} has no {precision} ONNX artifact ({path.name}); it has: "
                                   f"{', '.join(package_artifacts(package)) or 'none'}")
    return path


def precision_of(path: Path | str) -> str:
    """The precision an artifact's name declares: ``model.fp16.onnx`` → fp16, ``model.int8.plan`` → int8,
    else fp32."""
    name = Path(path).name
    return next((p for p in ("fp16", "int8") if f".{p}." in name), "fp32")


# ------------------------------------------------------------------------------------ verification records
def read_verification(package: Path | str) -> dict:
    """``verification.json`` (empty records when absent), size-bounded and format-checked; its records in
    :func:`deployment_rank` order."""
    path = Path(package) / VERIFICATION
    if not path.is_file():
        return {"format": VERIFICATION_FORMAT, "records": {}}
    fix = "delete it and run 'zoo verify' again"
    data = read_json(path, "verification record", fix)
    if not isinstance(data, dict) or data.get("format") != VERIFICATION_FORMAT or not isinstance(
            data.get("records"), dict):
        raise CheckpointError(f"{path}: not a {VERIFICATION_FORMAT} file; {fix}")
    return {**data, "records": in_deployment_order(data["records"])}


def write_verification(package: Path | str, verification: dict) -> None:
    write_json(Path(package) / VERIFICATION, {**verification, "records": in_deployment_order(verification["records"])})


def verification_status(package: Path | str) -> dict[str, str]:
    """Per artifact present: ``pass``, ``fail``, ``stale`` (bytes changed since verification) or ``unverified``."""
    package = Path(package)
    records = read_verification(package)["records"]
    status = {}
    present = [WEIGHTS] if (package / WEIGHTS).is_file() else []
    for name in [*present, *package_artifacts(package)]:
        try:
            record = ArtifactRecord.from_json(records[name]) if name in records else None
        except CheckpointError:  # an incomplete record verifies nothing
            record = None
        if record is None:
            status[name] = "unverified"
        elif sha256_file(package / name) != record.sha256:
            status[name] = "stale"
        else:
            status[name] = "pass" if record.gate.passed else "fail"
    return status


# ------------------------------------------------------------------------------------------------ manifest
def package_files(package: Path, exclude: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Every regular file of the package except the manifest and ``exclude``, as sorted POSIX paths (hidden
    ones skipped). A symbolic link anywhere in the package is refused: publishing must not copy files from
    outside it."""
    links = [p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_symlink()]
    if links:
        raise InvalidArgumentError(f"{package} contains symbolic links ({', '.join(sorted(links))}); "
                                   "replace them with the files themselves or remove them")
    return sorted(name for p in package.rglob("*") if p.is_file() and p.name != MANIFEST
                  and not any(part.startswith(".") for part in p.relative_to(package).parts)
                  and (name := p.relative_to(package).as_posix()) not in exclude)


def write_manifest(package: Path, exclude: tuple[str, ...] | list[str] = ()) -> dict:
    """(Re)write ``manifest.json`` for the package's current files, leaving out ``exclude``."""
    files = {name: {"sha256": sha256_file(package / name), "size": (package / name).stat().st_size}
             for name in package_files(package, exclude)}
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    write_json(package / MANIFEST, manifest)
    return manifest


def read_manifest(package: Path, where: str | None = None) -> dict:
    """The package's manifest, size-bounded before parsing and every entry checked (names, sha256, sizes: a
    metadata file over the size ddzoo reads, :func:`read_limit`, is refused here, before anything is fetched).
    Messages name the package as ``where`` (e.g. the hub it comes from; default: its folder)."""
    label = where or str(package)
    fix = "the package was refused"
    manifest = read_json(package / MANIFEST, "manifest", fix, shown=f"{label}: {MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(
            manifest.get("files"), dict):
        raise CheckpointError(f"{label}: {MANIFEST} is not a {MANIFEST_FORMAT} manifest; {fix}")
    for name, entry in manifest["files"].items():
        validate_package_path(name, label)
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not _SHA256.fullmatch(entry["sha256"]) or type(entry.get("size")) is not int or entry["size"] < 0):
            raise CheckpointError(f"{label}: {MANIFEST} has a bad entry for {echo(name)} (needs a sha256 and a "
                                  f"size); {fix}")
        limit = read_limit(name)
        if limit is not None and entry["size"] > limit:
            raise CheckpointError(f"{label}: {MANIFEST} lists {name} at {entry['size']:,} bytes, over the "
                                  f"{limit:,} bytes ddzoo reads of it; {fix}")
    return manifest


def check_files(folder: Path, manifest: dict, names: list[str], where: str | None = None) -> None:
    """Raise unless each of ``names`` in ``folder`` has the size and sha256 the manifest lists; messages name
    the package as ``where`` (e.g. the hub a download came from; default: the folder)."""
    label = where or str(folder)
    for name in names:
        entry = manifest["files"].get(name)
        if entry is None:
            raise CheckpointError(f"{label}: {name} is not listed in the package manifest; re-publish the package")
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{label}: {name} is missing; pull the model again")
        size = path.stat().st_size
        if size != entry["size"]:
            raise ChecksumError(f"{label}: {name}", f"{entry['size']:,} bytes of the manifest", f"{size:,} bytes",
                                "the download is incomplete or corrupt; pull again", what="size")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise ChecksumError(f"{label}: {name}", entry["sha256"], actual, "the download is corrupt; pull again")
