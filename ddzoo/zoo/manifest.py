"""``manifest.json``: the sha256 and size of every file of a model package, and the check against it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ddzoo.errors import CheckpointError, ChecksumError, InvalidArgumentError
from ddzoo.fileio import sha256_file, write_json
from ddzoo.names import validate_package_path

MANIFEST = "manifest.json"
FORMAT = "ddzoo-manifest/1"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a handful of files; anything bigger is refused unread
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    manifest = {"format": FORMAT, "files": files}
    write_json(package / MANIFEST, manifest)
    return manifest


def read_manifest(package: Path) -> dict:
    """The package's manifest, size-bounded before parsing and every entry checked (names, sha256, sizes)."""
    path = package / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise CheckpointError(f"{path}: {path.stat().st_size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit "
                                  "of a manifest; the package was refused")
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as err:
        raise CheckpointError(f"{path}: missing or unreadable manifest ({err}); re-publish the package") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"),
                                                                                           dict):
        raise CheckpointError(f"{path}: not a {FORMAT} manifest; re-publish the package")
    for name, entry in manifest["files"].items():
        validate_package_path(name)
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not _SHA256.match(entry["sha256"]) or type(entry.get("size")) is not int or entry["size"] < 0):
            raise CheckpointError(f"{path}: bad entry for {name!r} (needs a sha256 and a size); "
                                  "the package was refused")
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
