"""The zoo: publish model packages to hubs and pull them into the local cache.

``pull`` looks in the cache, then the Hugging Face Hub endpoint (``<org>/<name>``), then local directory hubs,
then the hub bundled with ddzoo. A cached commit is final; a branch name is re-resolved online (one metadata
call) and falls back to its cached copy when no hub answers. Files are streamed with a cap at the size the
package's ``manifest.json`` declares (the manifest itself at the size ddzoo reads of one), checked against it in
a hidden temporary folder and only then renamed into
``ZOO_HOME/models/<name>/snapshots/<content id>``; a revision name points at its snapshot through
``refs/<revision>``. An interrupted pull therefore leaves nothing visible, and two concurrent pulls of the
same model end with one copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ddzoo import __version__, constants
from ddzoo.errors import (
    CheckpointError,
    ChecksumError,
    HubContentError,
    InvalidArgumentError,
    ModelNotFoundError,
    ZooError,
    echo,
)
from ddzoo.fileio import atomic_write_bytes, copy_files, replace_dir
from ddzoo.names import parse_reference, validate_commit, validate_name, validate_repo_id, validate_revision
from ddzoo.package import (
    CARD,
    CONFIG,
    ENGINES,
    EXPORT_RECORD,
    MANIFEST,
    MAX_METADATA_BYTES,
    ONNX,
    ONNX_FILES,
    VERIFICATION,
    WEIGHTS,
    check_files,
    read_config,
    read_manifest,
    read_verification,
    verification_status,
    write_manifest,
)
from ddzoo.records import parse_records
from ddzoo.zoo.hubs import BUNDLED_HUB, DirectoryHub, HubUnavailableError, HuggingFaceHub, content_id, hub_for

FORMAT_FILES = {"torch": [WEIGHTS], "onnx": [ONNX], "fp16": [ONNX_FILES["fp16"]], "int8": [ONNX_FILES["int8"]],
                "trt": list(ONNX_FILES.values())}
DEFAULT_FORMATS = ("torch", "onnx", "fp16", "int8")
METADATA_FILES = [CONFIG, VERIFICATION, CARD, EXPORT_RECORD]


def models_dir() -> Path:
    return constants.ZOO_HOME / "models"


def _snapshot(name: str, commit: str) -> Path:
    return models_dir() / name / "snapshots" / commit


def _ref(name: str, revision: str) -> Path:
    return models_dir() / name / "refs" / revision


def is_read_only(folder: Path) -> bool:
    """Whether ``folder`` is a cache snapshot or a bundled package: only ``zoo pull`` may change those."""
    folder = Path(folder).resolve()
    return any(folder.is_relative_to(root.resolve()) for root in (models_dir(), BUNDLED_HUB))


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


def _snapshot_of(name: str, revision: str) -> Path | None:
    """The cache folder ``revision`` names (through its ref for a branch), or None."""
    ref = _ref(name, revision)
    commit = ref.read_text().strip()[:200] if ref.is_file() else revision
    try:
        return _snapshot(name, validate_commit(commit, f"the cache ref {ref}"))
    except HubContentError:
        return None  # a branch without a ref yet, or a damaged ref: nothing cached under this name


def _cached(name: str, revision: str, formats: list[str] | None, damaged: list[str] | None = None) -> Path | None:
    """The cached snapshot holding ``formats`` of ``name@revision``, checked against its manifest, or None.

    A snapshot that fails the check is discarded (it can only be fetched again) and the reason appended to
    ``damaged`` (without ``damaged``, it is left alone and an error raised); a snapshot lacking some of the
    wanted files is kept and None returned (the pull adds them).
    """
    folder = _snapshot_of(name, revision)
    if folder is None or not folder.is_dir():
        return None
    try:
        manifest = read_manifest(folder)
    except (CheckpointError, HubContentError) as err:
        reason = str(err)
    else:
        files = needed_files(manifest, formats)  # a format the package lacks is the caller's error
        if not all((folder / f).is_file() for f in files):
            return None
        try:
            check_files(folder, manifest, files)
            return folder
        except (CheckpointError, ChecksumError) as err:
            reason = str(err)
    if damaged is None:  # only a pull may change the cache
        raise CheckpointError(f"the cached snapshot {folder} is damaged ({reason}); "
                              f"run 'zoo pull {name}@{revision}' to fetch it again")
    shutil.rmtree(folder, ignore_errors=True)
    damaged.append(f"the cached snapshot {folder.name} was damaged and has been discarded ({reason})")
    return None


def _is_content_id(revision: str) -> bool:
    """A git commit id or a directory hub's content id: immutable, so a cached copy is final."""
    return revision.startswith("sha256-") or (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision))


def _clean_stale_temporaries(root: Path) -> None:
    """Remove temporary folders of pulls whose process is gone (killed mid-pull)."""
    for tmp in root.glob(".pull-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass


def _install(staging: Path, name: str, revision: str, commit: str) -> Path:
    """Rename the checked ``staging`` folder into the cache (keeping a copy another process installed first)."""
    target = _snapshot(name, commit)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old, new = _files_in(target), _files_in(staging)
        if new <= old:  # nothing new: another pull already installed the same content
            shutil.rmtree(staging, ignore_errors=True)
            _write_ref(name, revision, commit)
            return target
        copy_files(target, staging, old - new)  # keep what was there, add what is new, swap in one rename
    try:
        replace_dir(staging, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # lost a race to an identical install
    _write_ref(name, revision, commit)
    return target


def _files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _write_ref(name: str, revision: str, commit: str) -> None:
    if revision != commit:
        atomic_write_bytes(_ref(name, revision), commit.encode())


def configured_hubs(offline: bool, hubs: list[str] | None = None) -> list:
    """The hubs a pull searches, in order. ``offline`` drops every network hub."""
    found: list = []
    if hubs:
        found = [hub_for(h, constants.HF_ENDPOINT, constants.HF_ORG) for h in hubs]
    else:
        found = [HuggingFaceHub(constants.HF_ENDPOINT, constants.HF_ORG),
                 *(DirectoryHub(p) for p in constants.LOCAL_HUBS)]
    found.append(DirectoryHub(BUNDLED_HUB, "the hub bundled with ddzoo"))
    return [h for h in found if not (offline and isinstance(h, HuggingFaceHub))]


def pull(reference: str, *, formats: list[str] | None = None, offline: bool | None = None,
         hubs: list[str] | None = None, offline_option: str = "offline=True") -> Path:
    """Make ``NAME[@REVISION]`` available in the cache and return its folder.

    Args:
        reference: a model name, optionally ``@`` a branch, tag or commit.
        formats: artifacts to fetch (``torch``, ``onnx``, ``fp16``, ``int8``, ``trt``); default all but ``trt``.
        offline: never touch the network (default: ``ZOO_OFFLINE`` / ``HF_HUB_OFFLINE``).
        hubs: instead of the configured hubs: ``hf`` and/or directory paths (the bundled hub always comes last).
        offline_option: how the caller turns ``offline`` on, for the messages (the CLI: ``--offline``).

    Raises:
        ModelNotFoundError: no hub holds it. HubContentError: a hub broke the package's manifest (a listed file
        missing, not a regular file or larger than declared). ChecksumError: a file does not match the manifest.
    """
    name, revision = parse_reference(reference)
    formats = formats or None
    offline = constants.OFFLINE if offline is None else offline
    tried: list[str] = []
    unreachable = False
    cached = _cached(name, revision, formats, damaged=tried)
    if cached is not None and (offline or _is_content_id(revision)):
        return cached  # a branch name is re-resolved online: it may have moved
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_temporaries(root)
    for hub in configured_hubs(offline, hubs):
        try:
            resolved = hub.resolve(name, revision)
        except HubUnavailableError as err:
            tried.append(str(err))
            unreachable = True
            continue
        if resolved is None:
            tried.append(f"{hub.label}: not there")
            continue
        commit, listing = resolved
        validate_commit(commit, hub.label)
        known = _cached(name, commit, formats, damaged=tried)
        if known is not None:
            _write_ref(name, revision, commit)
            return known
        if MANIFEST not in listing:
            tried.append(f"{hub.label}: {name}@{revision} has no {MANIFEST}")
            continue
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".pull-{os.getpid()}-"))
        try:
            return _install(_fetch_checked(hub, name, revision, commit, listing, formats, staging), name, revision,
                            commit)
        except HubUnavailableError as err:
            tried.append(str(err))
            unreachable = True
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    if cached is not None:
        return cached  # no hub answered: the cached copy of this revision is the best there is
    where = "; ".join(tried)
    if offline:
        hint = " (offline: only the cache, local directory hubs and the bundled hub were searched)"
        fix = f"retry online (without {' or '.join(dict.fromkeys([offline_option, 'ZOO_OFFLINE=1']))})"
    elif unreachable:
        hint, fix = "", f"or search only the cache and local hubs with {offline_option}"
    else:
        hint, fix = "", "'zoo list' (ddzoo.list_models()) shows the models here"
    raise ModelNotFoundError(f"model {name}@{revision} not found{hint}: {where}; {fix}")


def _fetch_checked(hub, name: str, revision: str, commit: str, listing: list[str], formats: list[str] | None,
                   staging: Path) -> Path:
    """Fetch into ``staging`` the manifest and the files ``formats`` need, each capped at its declared size,
    and check them against the manifest; errors name the hub, never the staging folder."""
    where = f"{hub.label}: {name}@{revision}"
    hub.fetch(name, revision, commit, {MANIFEST: MAX_METADATA_BYTES[MANIFEST]}, staging)
    manifest = read_manifest(staging, where)
    files = needed_files(manifest, formats)
    absent = [f for f in files if f not in listing]
    if absent:
        raise HubContentError(f"{where}: {', '.join(absent[:5])} listed in the package but not a file of the hub; "
                              "the package was refused, nothing was written (re-publish it)")
    hub.fetch(name, revision, commit, {f: manifest["files"][f]["size"] for f in files}, staging)
    check_files(staging, manifest, files, where)
    return staging


def _peers(folders: list[Path | str], dataset: str) -> list[tuple[str, dict, dict]]:
    """(name, config, verification) of each package folder to compare with; all must be of ``dataset``."""
    from ddzoo.zoo.card import checkpoint_facts

    peers = []
    for folder in map(Path, folders):
        config = read_config(folder)
        if config["dataset"] != dataset:
            raise InvalidArgumentError(f"cannot compare with {folder}: it is a {config['dataset']} model, not "
                                       f"{dataset}; pass --compare only packages of the same dataset")
        verification = read_verification(folder)
        try:
            checkpoint_facts(verification)
        except (CheckpointError, KeyError, TypeError, ValueError, IndexError) as err:
            raise InvalidArgumentError(f"cannot compare with {folder}: its checkpoint record is incomplete "
                                       f"({err!r}); run 'zoo verify {folder}' first") from None
        peers.append((validate_name(folder.resolve().name), config, verification))
    return peers


def publish(package: Path | str, repo: str, *, revision: str = "main", hub: str = "hf",
            allow_unverified: bool = False, skip_unverified: bool = False,
            compare: list[Path | str] = ()) -> dict:
    """Write the package's card and manifest, then upload it to ``hub`` as ``repo`` (``ORG/NAME``).

    Refuses artifacts without a passing verification record for their current bytes, unless
    ``allow_unverified`` (the card then names them) or ``skip_unverified`` (they are left out of the upload).
    The card compares the model with the verified packages in ``compare`` (folders, same dataset).
    """
    from ddzoo.verification import VerificationFailedError
    from ddzoo.zoo.card import make_card

    org, name = validate_repo_id(repo)
    validate_revision(revision)
    package = Path(package)
    config = read_config(package)
    status = {k: v for k, v in verification_status(package).items() if k != WEIGHTS}
    unverified = sorted(k for k, v in status.items() if v != "pass")
    if not status or (skip_unverified and len(unverified) == len(status)):
        raise InvalidArgumentError(f"{package} has no {'verified ' if status else ''}artifacts to publish; "
                                   "run 'zoo export' and 'zoo verify' first")
    left_out = unverified if skip_unverified else []
    unverified = [] if skip_unverified else unverified
    if unverified and not allow_unverified:
        detail = ", ".join(f"{k}: {status[k]}" for k in unverified)
        raise VerificationFailedError(f"refusing to publish {package}: {detail}; run 'zoo verify {package}' "
                                      "or pass --allow-unverified")
    verification = read_verification(package)
    peers = _peers(list(compare), config["dataset"])
    current = {k: v for k, v in verification["records"].items() if k == WEIGHTS or status.get(k) == "pass"}
    card = make_card(package, name, config, {**verification, "records": current}, unverified, peers)
    atomic_write_bytes(package / CARD, card.encode())
    files = [*write_manifest(package, exclude=left_out)["files"], MANIFEST]
    onnx = parse_records({"records": current}).get(ONNX)
    metrics = (f"accuracy {onnx.clean.accuracy:.4f}, rho2 {onnx.headline_rho2:.4f}"
               if onnx and onnx.headline_rho2 is not None else "unverified")
    message = (f"{name}: {config['arch']} on {config['dataset']} ({config.get('recipe', {}).get('name')}), "
               f"ONNX {metrics}; ddzoo {__version__}")
    target = hub_for(hub, constants.HF_ENDPOINT, org)
    return {"repo": f"{org}/{name}", "revision": revision, "message": message, "unverified": unverified,
            "left_out": left_out, **target.publish(package, name, revision, message, files)}


def package_facts(folder: Path) -> dict:
    """Name-independent facts of a package folder: architecture, dataset, recipe, ONNX accuracy and ρ₂, and the
    checkpoint's AutoAttack ℓ∞ robust accuracy (where ``zoo verify --strong`` measured it)."""
    config = read_config(folder)
    records = parse_records(read_verification(folder), f"{folder}")
    onnx, checkpoint = records.get(ONNX), records.get(WEIGHTS)
    strong = (checkpoint.strong if checkpoint else None) or {}
    return {"arch": config["arch"], "dataset": config["dataset"], "recipe": config.get("recipe", {}).get("name"),
            "accuracy": onnx.clean.accuracy if onnx else None, "rho2": onnx.headline_rho2 if onnx else None,
            "autoattack": ((strong.get("autoattack") or {}).get("Linf") or {}).get("accuracy")}


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
        facts = {"arch": None, "dataset": None, "recipe": None, "accuracy": None, "rho2": None, "autoattack": None}
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


def list_models() -> list[dict]:
    """Bundled and cached models with their robustness metrics (no network); damaged entries are marked. A
    bundled model pulled into the cache is listed once, as cached (the same content, and the copy ``load``
    uses)."""
    packages = local_packages()
    in_cache = {(p.name, p.revision) for p in packages if p.where == "cache"}
    return [_row(p.name, p.revision, p.where, p.folder) for p in packages
            if not (p.where == "bundled" and (p.name, content_id(p.folder)) in in_cache)]


def info(reference: str) -> dict:
    """Card summary, artifacts and verification status of a cached or bundled model (no network)."""
    from ddzoo.zoo.hubs import import_hub

    name, revision = parse_reference(reference)
    folder = _cached(name, revision, ["onnx"])
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


__all__ = ["LocalPackage", "ModelNotFoundError", "info", "integrity", "is_read_only", "list_models", "local_packages",
           "publish", "pull", "validate_name"]
