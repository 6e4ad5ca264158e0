"""What ``zoo list`` and ``zoo info`` show: the packages readable here without the network and their facts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ddzoo.errors import InvalidArgumentError, ModelNotFoundError, UnknownNameError, ZooError
from ddzoo.eval.autoattack import FIGURE_FIELDS
from ddzoo.eval.threat import figure_label
from ddzoo.names import parse_reference
from ddzoo.package import (
    CARD,
    MANIFEST,
    ONNX,
    WEIGHTS,
    check_files,
    read_config,
    read_manifest,
    read_verification,
    verification_status,
)
from ddzoo.records import parse_records
from ddzoo.zoo.cache import cached_snapshot, models_dir
from ddzoo.zoo.hubs import BUNDLED_HUB, DirectoryHub, content_id


def package_facts(folder: Path) -> dict:
    """Name-independent facts of a package folder: architecture, dataset, recipe, ONNX accuracy (and its n) and
    ρ₂, the checkpoint's AutoAttack ℓ∞ robust accuracy at the dataset's standard ε (where ``zoo verify --strong``
    measured it; ``autoattack_label`` names its ε and n), and ``robust``: the checkpoint's robust accuracy per
    declared threat model (attack, label, accuracy, ci95, images; ``zoo verify`` measures it for packages that
    declare one)."""
    config = read_config(folder)
    records = parse_records(read_verification(folder), f"{folder}")
    onnx, checkpoint = records.get(ONNX), records.get(WEIGHTS)
    strong = (checkpoint.strong if checkpoint else None) or {}
    linf = (strong.get("autoattack") or {}).get("Linf") or {}
    return {"arch": config["arch"], "dataset": config["dataset"], "recipe": config.get("recipe", {}).get("name"),
            "accuracy": onnx.clean.accuracy if onnx else None, "accuracy_images": onnx.clean.images if onnx else None,
            "rho2": onnx.headline_rho2 if onnx else None, "autoattack": linf.get("accuracy"),
            "autoattack_label": (figure_label("AutoAttack", "Linf", linf)
                                 if {"accuracy", "eps", "images"} <= set(linf) else None),
            "robust": {key: {field: figure[field] for field in FIGURE_FIELDS}
                       for key, figure in ((checkpoint.robust if checkpoint else None) or {}).items()
                       if isinstance(figure, dict) and all(field in figure for field in FIGURE_FIELDS)}}


def integrity(folder: Path) -> str:
    """``ok``, or ``damaged: <reason>`` when a file no longer matches the snapshot's manifest."""
    try:
        manifest = read_manifest(folder)
        check_files(folder, manifest, [f for f in manifest["files"] if (folder / f).is_file()])
    except (ZooError, OSError) as err:
        return f"damaged: {err}"
    return "ok"


def _row(name: str, revision: str, where: str, folder: Path) -> dict:
    """One listing row; a package that cannot be read is reported, not fatal."""
    row = {"name": name, "revision": revision, "where": where}
    status = integrity(folder)
    try:
        facts = package_facts(folder)
    except (ZooError, OSError, KeyError, TypeError, AttributeError) as err:
        facts = {"arch": None, "dataset": None, "recipe": None, "accuracy": None, "accuracy_images": None,
                 "rho2": None, "autoattack": None, "autoattack_label": None, "robust": {}}
        status = status if status != "ok" else f"unreadable: {err}"
    return {**row, **facts, "status": status}


@dataclass(frozen=True)
class LocalPackage:
    """A package folder readable here without the network: where it is and what it is called."""

    name: str
    revision: str
    where: str  # "bundled" | "cache" | "hub"
    folder: Path


def local_packages(hubs: list[Path | str] | None = None) -> list[LocalPackage]:
    """The packages ``zoo list`` sees: bundled, then cached; or, with ``hubs``, those directory hubs' packages.

    Args:
        hubs: directory hubs to list instead (each must exist).

    Returns:
        One entry per package folder; names and revisions are folder names as found on disk (validate them
        before using them as names).

    Raises:
        InvalidArgumentError: a hub is not a folder.
    """
    if hubs:
        missing = [str(h) for h in hubs if not Path(h).is_dir()]
        if missing:
            raise InvalidArgumentError(f"no directory hub at {', '.join(missing)}; pass the folder 'zoo publish "
                                       "--hub DIR' wrote")
        return [LocalPackage(name, revision, "hub", folder)
                for hub in hubs for name, revision, folder in DirectoryHub(Path(hub)).packages()]
    found = [LocalPackage(name, revision, "bundled", folder)
             for name, revision, folder in DirectoryHub(BUNDLED_HUB).packages() if revision == "main"]
    for snapshots in sorted(models_dir().glob("*/snapshots")):
        found += [LocalPackage(snapshots.parent.name, folder.name, "cache", folder)
                  for folder in sorted(p for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))]
    return found


LIST_SORTS = ("name", "accuracy", "rho2", "autoattack")  # the metrics sort best first


def list_models(*, sort: str = "name", dataset: str | None = None, recipe: str | None = None,
                min_rho2: float | None = None, min_autoattack: float | None = None) -> list[dict]:
    """Bundled and cached models with their robustness metrics (no network); damaged entries are marked. A
    bundled model pulled into the cache is listed once, as cached (the same content, and the copy ``load``
    uses).

    Args:
        sort: ``name`` (as found), or ``accuracy`` / ``rho2`` / ``autoattack`` descending, rows without it last.
        dataset, recipe: only models of this dataset / training recipe.
        min_rho2, min_autoattack: only models whose ONNX ρ₂ / AutoAttack ℓ∞ accuracy is at least this.

    Raises:
        UnknownNameError: ``sort`` is not one of :data:`LIST_SORTS`.
    """
    if sort not in LIST_SORTS:
        raise UnknownNameError("sort key", sort, LIST_SORTS)
    packages = local_packages()
    in_cache = {(p.name, p.revision) for p in packages if p.where == "cache"}
    rows = [_row(p.name, p.revision, p.where, p.folder) for p in packages
            if not (p.where == "bundled" and (p.name, content_id(p.folder)) in in_cache)]
    rows = [r for r in rows if (dataset is None or r["dataset"] == dataset)
            and (recipe is None or r["recipe"] == recipe) and _at_least(r["rho2"], min_rho2)
            and _at_least(r["autoattack"], min_autoattack)]
    if sort != "name":
        rows.sort(key=lambda r: (r[sort] is None, -(r[sort] or 0.0)))
    return rows


def _at_least(value: float | None, floor: float | None) -> bool:
    return floor is None or (value is not None and value >= floor)


def info(reference: str) -> dict:
    """Card summary, artifacts and verification status of a cached or bundled model (no network)."""
    from ddzoo.zoo.hubs import import_hub

    name, revision = parse_reference(reference)
    folder = cached_snapshot(name, revision, ["onnx"])
    if folder is None:
        bundled = BUNDLED_HUB / name / revision
        if not (bundled / MANIFEST).is_file():
            raise ModelNotFoundError(f"{name}@{revision} is neither cached nor bundled; run 'zoo pull {reference}'")
        folder = bundled
    manifest = read_manifest(folder)
    card = import_hub().ModelCard.load(folder / CARD) if (folder / CARD).is_file() else None
    data = card.data.to_dict() if card else {}
    return {"name": name, "revision": revision, "path": str(folder), **package_facts(folder),
            "license": data.get("license"), "tags": data.get("tags", []),
            "artifacts": {k: v["size"] for k, v in manifest["files"].items()},
            "verification": verification_status(folder)}

