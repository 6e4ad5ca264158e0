"""Model names and references (``NAME[@REVISION]``), validated before any I/O.

Every pattern must match the whole string (``re.fullmatch``): ``$`` would also accept a final newline.
"""

from __future__ import annotations

import re

from ddzoo.errors import HubContentError, InvalidArgumentError, echo

# What both the Hub and every filesystem accept: no path separators, no "..", no leading dot or dash.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_REVISION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,198}[A-Za-z0-9])?")
_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")
_COMMIT = re.compile(r"[0-9a-f]{40}|sha256-[0-9a-f]{40}")


def _whole(pattern: re.Pattern, text: object) -> bool:
    return isinstance(text, str) and pattern.fullmatch(text) is not None


def validate_name(name: str, what: str = "model name") -> str:
    """``name`` if it is a safe repository name, else :class:`InvalidArgumentError` saying what is allowed."""
    if not _whole(_NAME, name) or ".." in name or "--" in name:
        raise InvalidArgumentError(
            f"invalid {what} {echo(name)}: use letters, digits, '.', '_' and '-' (no '/', '..' or '--'), "
            "starting and ending with a letter or digit, at most 96 characters")
    return name


def validate_revision(revision: str) -> str:
    """A branch, tag or commit name without path traversal."""
    if not _whole(_REVISION, revision) or ".." in revision or "//" in revision:
        raise InvalidArgumentError(f"invalid revision {echo(revision)}: use a branch, tag or commit id "
                                   "(letters, digits, '.', '_', '-', '/'; no '..'), at most 200 characters")
    return revision


def validate_package_path(path: str, where: str = "the package") -> str:
    """A file name from a package's manifest or a hub listing, checked before it is joined onto a folder.

    Allowed: a top-level file (``model.onnx``) or an engine ``engines/<version>/<sm..>/<file>``; each part
    letters, digits, ``.``, ``_``, ``-`` (no ``..``, no leading dot), ``/`` as the only separator.
    """
    parts = path.split("/") if isinstance(path, str) else []
    shaped = len(parts) == 1 or (len(parts) == 4 and parts[0] == "engines")
    if not shaped or not all(_whole(_PART, p) and ".." not in p for p in parts):
        raise HubContentError(
            f"unsafe file name {echo(path)} in {where}: only top-level files and engines/<version>/<sm>/<file> "
            "made of letters, digits, '.', '_', '-' are allowed; the package was refused, nothing was written")
    return path


def validate_commit(commit: str, where: str) -> str:
    """A content id a hub returned (git sha or ``sha256-`` id), checked before it names a cache folder."""
    if not _whole(_COMMIT, commit):
        raise HubContentError(f"{where} answered an invalid commit id {echo(commit)}; "
                              "the hub is misconfigured or hostile, nothing was written")
    return commit


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """``ORG/NAME`` → (org, name), both validated."""
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidArgumentError(f"invalid repository {echo(repo_id)}: expected ORG/NAME, "
                                   "e.g. ddzoo/lenet-mnist-dd")
    return validate_name(parts[0], "organisation"), validate_name(parts[1])


def parse_reference(reference: str) -> tuple[str, str]:
    """``NAME[@REVISION]`` → (name, revision); the revision defaults to ``main``."""
    name, _, revision = reference.partition("@")
    return validate_name(name), validate_revision(revision or "main")
