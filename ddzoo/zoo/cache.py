"""The local cache of pulled packages (``ZOO_HOME/models``), laid out as huggingface_hub lays out its own.

``<name>/snapshots/<content id>/`` holds one checked copy of a package; ``<name>/refs/<revision>`` names the
snapshot a branch points at. Snapshots are installed by renaming a checked temporary folder, so an interrupted
pull leaves nothing visible and two concurrent pulls of the same model end with one copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ddzoo import constants
from ddzoo.errors import CheckpointError, ChecksumError, HubContentError
from ddzoo.fileio import atomic_write_bytes, copy_files, replace_dir
from ddzoo.names import validate_commit
from ddzoo.package import check_files, needed_files, read_manifest
from ddzoo.zoo.hubs import BUNDLED_HUB


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



def _snapshot_of(name: str, revision: str) -> Path | None:
    """The cache folder ``revision`` names (through its ref for a branch), or None."""
    ref = _ref(name, revision)
    commit = ref.read_text().strip()[:200] if ref.is_file() else revision
    try:
        return _snapshot(name, validate_commit(commit, f"the cache ref {ref}"))
    except HubContentError:
        return None  # a branch without a ref yet, or a damaged ref: nothing cached under this name


def cached_snapshot(name: str, revision: str, formats: list[str] | None,
                    damaged: list[str] | None = None) -> Path | None:
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


def is_content_id(revision: str) -> bool:
    """A git commit id or a directory hub's content id: immutable, so a cached copy is final."""
    return revision.startswith("sha256-") or (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision))


def clean_stale_temporaries(root: Path) -> None:
    """Remove temporary folders of pulls whose process is gone (killed mid-pull)."""
    for tmp in root.glob(".pull-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass


def install_snapshot(staging: Path, name: str, revision: str, commit: str) -> Path:
    """Rename the checked ``staging`` folder into the cache (keeping a copy another process installed first)."""
    target = _snapshot(name, commit)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old, new = _files_in(target), _files_in(staging)
        if new <= old:  # nothing new: another pull already installed the same content
            shutil.rmtree(staging, ignore_errors=True)
            write_ref(name, revision, commit)
            return target
        copy_files(target, staging, old - new)  # keep what was there, add what is new, swap in one rename
    try:
        replace_dir(staging, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # lost a race to an identical install
    write_ref(name, revision, commit)
    return target


def _files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def write_ref(name: str, revision: str, commit: str) -> None:
    if revision != commit:
        atomic_write_bytes(_ref(name, revision), commit.encode())

