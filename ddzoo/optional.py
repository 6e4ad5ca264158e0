"""Optional dependencies, imported only when a feature needs them (``import ddzoo`` stays light)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ddzoo.errors import MissingDependencyError


def require(module: str, feature: str, extra: str | None, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it (or, with
    ``extra=None``, the package itself)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(package or module.split(".")[0], feature, extra=extra) from err
