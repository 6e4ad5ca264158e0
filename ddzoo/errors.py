"""Every ddzoo exception, in one module.

Each is a :class:`ZooError` and also a stdlib type (``ValueError``, ``OSError``, ``KeyError`` ...), so
callers can catch either. ``ddzoo.cli.main`` turns a ``ZooError`` into a one-line message and a documented exit
code (see ``ddzoo.cli``); messages therefore say what to do instead, and echo what a user or a hub sent only
through :func:`echo` (bounded: a hostile 100 KB name must not become a 100 KB message).
"""

from __future__ import annotations

from pathlib import Path

ECHO_CHARS = 60  # how much of a user-provided string a message repeats


def shorten(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 24, 8)]}… ({len(text):,} characters)"


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """How a message repeats user or hub input: its ``repr``, shortened (see :func:`shorten`)."""
    return shorten(repr(value), limit)


class ZooError(Exception):
    """Base class of all ddzoo errors."""

    def __str__(self) -> str:  # KeyError would otherwise quote its message
        return str(self.args[0]) if self.args else self.__class__.__name__


class UnknownNameError(ZooError, KeyError):
    """A name (model, dataset, recipe ...) that is not registered; lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {echo(name)}; choose one of: {', '.join(self.valid)}")


class DuplicateNameError(ZooError, ValueError):
    """A registry entry registered twice."""


class InvalidArgumentError(ZooError, ValueError):
    """An argument out of range or inconsistent with others."""


class DataError(ZooError, OSError):
    """A dataset file that is missing, truncated, unparsable or fails its checksum."""


class ChecksumError(DataError):
    """A file whose sha256 (or size, ``what="size"``) differs from the expected one."""

    def __init__(self, path: Path | str, expected: str, actual: str, fix: str, what: str = "sha256"):
        self.path, self.expected, self.actual = Path(path), expected, actual
        super().__init__(f"{path}: {what} {actual} does not match the expected {expected}; {fix}")


class DatasetNotFoundError(DataError):
    """No source could provide a dataset (and downloading was not possible)."""


class CheckpointError(ZooError, OSError):
    """A checkpoint directory that is missing files or holds inconsistent metadata."""


class TrainingDivergedError(ZooError, ArithmeticError):
    """The training loss became NaN or infinite; the last whole epoch's state is kept."""


class MissingDependencyError(ZooError, ImportError):
    """An optional package needed by a feature is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        how = f"pip install 'ddzoo[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the optional package {package!r}; install it with: {how}")


class VerificationFailedError(ZooError, RuntimeError):
    """An artifact failed the robustness gate (or has no valid record)."""


class ModelNotFoundError(ZooError, LookupError):
    """No hub holds the requested model (or revision)."""


class HubUnavailableError(ZooError, ConnectionError):
    """A hub could not be reached (network down, server error)."""


class HubContentError(ZooError, OSError):
    """A hub served what its own manifest or the package rules forbid: an unsafe file name or commit id, a
    listed file that is missing or not a regular file, more bytes than declared. The package is refused and
    nothing is written."""


class BadRequestError(ZooError, ValueError):
    """A malformed inference request (answered with HTTP 400)."""


class QueueFullError(ZooError, RuntimeError):
    """The service's queue is full (answered with HTTP 503 and Retry-After)."""


class ModelLoadError(ZooError, RuntimeError):
    """A served artifact could not be loaded (the service stops)."""
