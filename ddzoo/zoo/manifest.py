"""``manifest.json``: the sha256 and size of every file of a model package, and the check against it."""

from __future__ import annotations

import json
from pathlib import Path

from ddzoo.errors import CheckpointError, ChecksumError
from ddzoo.fileio import sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT = "ddzoo-manifest/1"


def package_files(package: Path, exclude: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Every regular file of the package except the manifest and ``exclude``, as sorted POSIX paths (hidden
    ones skipped)."""
    return sorted(name for p in package.rglob("*") if p.is_file() and p.name != MANIFEST
                  and not any(part.startswith(".") for part in p.relative_to(package).parts)
                  and (name := p.relative_to(package).as_posix()) not in exclude)


def write_manifest(package: Path, exclude: tuple[str, ...] | list[str] = ()) -> dict:
    """(Re)write ``manifest.json`` for the package's current files, leaving out ``exclude``."""
    files = {name: {"sha256": sha256_file(package / name), "size": (package / name).stat().st_size}
             for name in package_files(package, exclude)}
    manifest = {"format": FORMAT, "files": files}
    write_json(package / MANIFEST, manifest)
    return manifest


def read_manifest(package: Path) -> dict:
    path = package / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: missing or unreadable manifest ({err}); re-publish the package") from err
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{path}: not a {FORMAT} manifest; re-publish the package")
    return manifest


def check_files(folder: Path, manifest: dict, names: list[str]) -> None:
    """Raise unless each of ``names`` in ``folder`` has the size and sha256 the manifest lists."""
    for name in names:
        entry = manifest["files"].get(name)
        if entry is None:
            raise CheckpointError(f"{name} is not listed in the package manifest; re-publish the package")
        path = folder / name
        if not path.is_file() or path.stat().st_size != entry["size"]:
            raise ChecksumError(path, entry["sha256"], "size mismatch" if path.is_file() else "missing",
                                "the download is incomplete or corrupt; pull again")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise ChecksumError(path, entry["sha256"], actual, "the download is corrupt; pull again")
