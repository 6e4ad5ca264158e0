"""``zoo pull``: a package from the configured hubs into the cache, each file checked against its manifest.

``pull`` looks in the cache, then the Hugging Face Hub endpoint (``<org>/<name>``), then local directory hubs,
then the hub bundled with ddzoo. A cached commit is final; a branch name is re-resolved online (one metadata
call) and falls back to its cached copy when no hub answers. Files are streamed with a cap at the size the
package's ``manifest.json`` declares (the manifest itself at the size ddzoo reads of one), checked against it in
a hidden temporary folder and only then renamed into the cache (:mod:`ddzoo.zoo.cache`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

from ddzoo import constants
from ddzoo.errors import HubContentError, InvalidArgumentError, ModelNotFoundError, echo
from ddzoo.names import parse_reference, validate_commit
from ddzoo.package import MANIFEST, MAX_METADATA_BYTES, check_files, needed_files, read_manifest
from ddzoo.zoo.cache import (
    cached_snapshot,
    clean_stale_temporaries,
    install_snapshot,
    is_content_id,
    models_dir,
    write_ref,
)
from ddzoo.zoo.hubs import BUNDLED_HUB, DirectoryHub, HubUnavailableError, HuggingFaceHub, hub_for


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
    cached = cached_snapshot(name, revision, formats, damaged=tried)
    if cached is not None and (offline or is_content_id(revision)):
        return cached  # a branch name is re-resolved online: it may have moved
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(root)
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
        known = cached_snapshot(name, commit, formats, damaged=tried)
        if known is not None:
            write_ref(name, revision, commit)
            return known
        if MANIFEST not in listing:
            tried.append(f"{hub.label}: {name}@{revision} has no {MANIFEST}")
            continue
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".pull-{os.getpid()}-"))
        try:
            fetched = _fetch_checked(hub, name, revision, commit, listing, formats, staging)
            return install_snapshot(fetched, name, revision, commit)
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



class ResolvedPackage(NamedTuple):
    """A package folder and the model name it goes by."""

    folder: Path
    name: str


FILE_SUFFIXES = {".onnx", ".safetensors", ".json", ".engine", ".plan", ".npz", ".zip", ".pt", ".pth"}


def resolve_package(name_or_path: str | Path, *, formats: list[str] | None = None, offline: bool | None = None,
                    offline_option: str = "ZOO_OFFLINE=1") -> ResolvedPackage:
    """The one resolver of names and paths: a package folder as given, or a model pulled by name (cache first).

    Args:
        name_or_path: a package folder, or ``NAME[@REVISION]``.
        formats, offline, offline_option: as for :func:`pull`.

    Raises:
        InvalidArgumentError: a path (a ``/`` or a file's suffix, e.g. ``.onnx``) that is not a folder. A dot
            alone does not make a path: ``lenet.v2`` and ``NAME@v1.0`` are references.
    """
    text = str(name_or_path)
    if not text.strip():
        raise InvalidArgumentError("no model given; pass a folder made by 'zoo export' or a model name from 'zoo list'")
    path = Path(name_or_path)
    if _is_dir(path):
        return ResolvedPackage(path, path.resolve().name)
    name_part = text.partition("@")[0]
    if "/" in name_part or Path(name_part).suffix.lower() in FILE_SUFFIXES:
        raise InvalidArgumentError(f"no package folder {echo(text)}; pass a folder made by 'zoo export' "
                                   "or a model name from 'zoo list'")
    folder = pull(text, formats=formats, offline=offline, offline_option=offline_option)
    return ResolvedPackage(folder, parse_reference(text)[0])


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False for a path the filesystem refuses (e.g. a name too long)."""
    try:
        return path.is_dir()
    except OSError:
        return False
