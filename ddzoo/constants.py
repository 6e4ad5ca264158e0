"""Environment variables, parsed once at import (the one place that reads them).

- ``ZOO_HOME``: ddzoo's cache (datasets, model packages); default ``$XDG_CACHE_HOME/ddzoo``.
- ``ZOO_DATA_DIR``: a directory of dataset ``.npz`` files laid out as in ``shared/data`` (checked first).
- ``ZOO_DEBIAN_DATASETS``: where Debian's ``dataset-*`` packages put their files.
- ``ZOO_OFFLINE``: never touch the network (downloads raise instead).
- ``HF_ENDPOINT``: the Hugging Face Hub (or a compatible server); ``ZOO_HF_ORG``: the zoo's organisation there.
- ``ZOO_API_KEY``: the key ``zoo serve`` requires (``Authorization: Bearer <key>``) unless ``--api-key`` is given.
- ``ZOO_HUBS``: local directory hubs, separated by ``os.pathsep``, searched after the Hugging Face Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on", "y", "t"}


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def _optional_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


_XDG_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()

ZOO_HOME: Path = _optional_path("ZOO_HOME") or _XDG_CACHE / "ddzoo"
ZOO_DATA_DIR: Path | None = _optional_path("ZOO_DATA_DIR")
DEBIAN_DATASETS_DIR: Path = _optional_path("ZOO_DEBIAN_DATASETS") or Path("/usr/share/datasets")
OFFLINE: bool = _is_true(os.environ.get("ZOO_OFFLINE")) or _is_true(os.environ.get("HF_HUB_OFFLINE"))
DOWNLOAD_TIMEOUT_S: float = float(os.environ.get("ZOO_DOWNLOAD_TIMEOUT", "60"))
HF_ENDPOINT: str = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
HF_ORG: str = os.environ.get("ZOO_HF_ORG") or "ddzoo"
LOCAL_HUBS: list[Path] = [Path(p).expanduser() for p in os.environ.get("ZOO_HUBS", "").split(os.pathsep) if p.strip()]
API_KEY: str | None = os.environ.get("ZOO_API_KEY", "").strip() or None
