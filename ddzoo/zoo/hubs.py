"""Where model packages live: the Hugging Face Hub (or any server speaking its API) and directory hubs.

A directory hub keeps ``<root>/<name>/<revision>/<files>``; the hub bundled with ddzoo is one, inside the
package (``ddzoo/hub``). Every hub answers ``resolve`` (a content id and the file list, or None when it does
not hold the model), ``fetch`` (files into a folder) and, except the bundled one, ``publish``.

``fetch`` streams each file with a cap: it stops as soon as a file holds more bytes than allowed (its
manifest's size; for the manifest itself, the most ddzoo reads of one), so a hub serving 1 GiB for a file it
lists at 1.7 MB costs 1.7 MB, not 1 GiB. A listed file the hub lacks, or a FIFO or other special file in its
place, is a :class:`HubContentError` naming the hub and the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ddzoo import constants
from ddzoo.errors import HubContentError, HubUnavailableError, InvalidArgumentError
from ddzoo.fileio import building_dir, copy_files, write_capped
from ddzoo.names import validate_package_path
from ddzoo.optional import require
from ddzoo.package import ENGINES, MANIFEST, MAX_METADATA_BYTES

CHUNK = 1 << 20

BUNDLED_HUB = Path(__file__).resolve().parents[1] / "hub"


def import_hub():
    """huggingface_hub (the ``hub`` extra)."""
    return require("huggingface_hub", "model cards and the Hugging Face Hub", extra="hub")


def content_id(folder: Path, where: str | None = None) -> str:
    """A directory hub's content id of the package in ``folder``: the sha256 of its manifest, read only up to
    the size ddzoo reads of a manifest (over it: :class:`HubContentError`, messages naming ``where``)."""
    limit = MAX_METADATA_BYTES[MANIFEST]
    with open(folder / MANIFEST, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_large(where or str(folder), MANIFEST, limit)
    return "sha256-" + hashlib.sha256(data).hexdigest()[:40]


def _too_large(where: str, file: str, limit: int) -> HubContentError:
    allowed = "ddzoo reads of a manifest" if file == MANIFEST else "its manifest declares"
    return HubContentError(f"{where}: {file} holds more than the {limit:,} bytes {allowed}; the download was "
                           "stopped and the package refused, nothing was written")


def _missing(where: str, file: str) -> HubContentError:
    return HubContentError(f"{where}: {file} is listed in the package but missing from the hub; the package was "
                           "refused, nothing was written (re-publish it)")


class DirectoryHub:
    """Packages in ``<root>/<name>/<revision>/``; the content id is the sha256 of the package's manifest."""

    def __init__(self, root: Path, label: str | None = None):
        self.root = Path(root)
        self.label = label or f"directory hub {self.root}"

    def resolve(self, name: str, revision: str) -> tuple[str, list[str]] | None:
        folder = self.root / name / revision
        if not (folder / MANIFEST).is_file():
            return None
        files = [p.relative_to(folder).as_posix() for p in (*folder.glob("*"), *folder.glob(f"{ENGINES}/*/*/*"))
                 if p.is_file() and not p.name.startswith(".")]  # regular files where a package keeps them
        return content_id(folder, f"{self.label}: {name}@{revision}"), sorted(files)

    def fetch(self, name: str, revision: str, commit: str, sizes: dict[str, int], dest: Path) -> None:
        """Copy each file of ``sizes`` (name → the most bytes allowed) into ``dest``."""
        where = f"{self.label}: {name}@{revision}"
        for file, limit in sizes.items():
            source = self.root / name / revision / validate_package_path(file, where)
            try:  # non-blocking: opening a FIFO to read must not wait for a writer
                fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                raise _missing(where, file) from None
            except OSError as err:
                raise HubContentError(f"{where}: {file} cannot be read ({err.strerror}); the package was "
                                      "refused, nothing was written") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise HubContentError(f"{where}: {file} is not a regular file (a FIFO, device or folder); the "
                                      "package was refused, nothing was written")
            with os.fdopen(fd, "rb") as handle:
                if write_capped(_read_chunks(handle, where, file), dest / file, limit) is None:
                    raise _too_large(where, file, limit)

    def packages(self) -> list[tuple[str, str, Path]]:
        """(name, revision, folder) of every package in the hub (one revision level; folders with a manifest)."""
        return [(folder.parent.name, folder.name, folder) for folder in sorted(self.root.glob("*/*"))
                if (folder / MANIFEST).is_file()]

    def publish(self, package: Path, name: str, revision: str, message: str, files: list[str]) -> dict:
        target = self.root / name / revision
        with building_dir(target) as staging:
            copy_files(package, staging, files)
            (staging / ".commit-message").write_text(message + "\n")
        commit, _ = self.resolve(name, revision)
        return {"hub": self.label, "url": str(target), "commit": commit}


def _read_chunks(handle: BinaryIO, where: str, file: str) -> Iterator[bytes]:
    try:
        while block := handle.read(CHUNK):
            yield block
    except OSError as err:
        raise HubContentError(f"{where}: reading {file} failed ({err.strerror}); the package was refused, "
                              "nothing was written") from None


class HuggingFaceHub:
    """``<org>/<name>`` on a Hugging Face Hub endpoint, through huggingface_hub's own client."""

    def __init__(self, endpoint: str, org: str, token: str | None = None):
        self.endpoint, self.org, self.token = endpoint, org, token
        self.label = f"Hugging Face Hub {endpoint} ({org})"

    def _api(self):
        return import_hub().HfApi(endpoint=self.endpoint, token=self.token)

    def _unavailable(self, err: Exception, doing: str) -> HubUnavailableError:
        """Any failure inside the client (transport errors of its HTTP library included: huggingface_hub 2.x
        raises httpx errors that are neither OSError nor HfHubHTTPError) as one line naming the hub (what to do
        about it is the caller's to say: ``pull`` names its offline option)."""
        first = (str(err).splitlines() or [""])[0][:300]
        return HubUnavailableError(f"{self.label}: {doing}: {type(err).__name__}: {first}; check the network "
                                   "and HF_ENDPOINT")

    def resolve(self, name: str, revision: str) -> tuple[str, list[str]] | None:
        import_hub()
        from huggingface_hub import errors

        try:
            info = self._api().model_info(f"{self.org}/{name}", revision=revision, files_metadata=False)
            return info.sha, [s.rfilename for s in info.siblings or []]
        except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError):
            return None
        except Exception as err:  # noqa: BLE001 - see _unavailable
            raise self._unavailable(err, "resolving the model") from err

    def fetch(self, name: str, revision: str, commit: str, sizes: dict[str, int], dest: Path) -> None:
        """Download each file of ``sizes`` (name → the most bytes allowed) at ``commit`` into ``dest``, streamed
        with huggingface_hub's HTTP session and stopped at the cap (``hf_hub_download`` has none)."""
        hub = import_hub()
        from huggingface_hub.utils import build_hf_headers, get_session

        where = f"{self.label}: {name}@{revision}"
        headers = build_hf_headers(token=self.token)
        for file, limit in sizes.items():
            url = hub.hf_hub_url(f"{self.org}/{name}", validate_package_path(file, where), revision=commit,
                                 endpoint=self.endpoint)
            try:
                with get_session().stream("GET", url, headers=headers, follow_redirects=True,
                                          timeout=constants.DOWNLOAD_TIMEOUT_S) as response:
                    if response.status_code == 404:
                        raise _missing(where, file)
                    if response.status_code >= 400:  # the body is not read: it may be anything
                        raise HubUnavailableError(f"{self.label}: downloading {file}: HTTP {response.status_code}; "
                                                  "check the network and HF_ENDPOINT")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
                        raise _too_large(where, file, limit)
                    if write_capped(response.iter_bytes(CHUNK), dest / file, limit) is None:
                        raise _too_large(where, file, limit)
            except (HubContentError, HubUnavailableError):
                raise
            except Exception as err:  # noqa: BLE001 - see _unavailable
                raise self._unavailable(err, f"downloading {file}") from err

    def publish(self, package: Path, name: str, revision: str, message: str, files: list[str]) -> dict:
        api = self._api()
        repo_id = f"{self.org}/{name}"
        try:
            api.create_repo(repo_id, exist_ok=True)
            if revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=str(package), revision=revision,
                                     commit_message=message, allow_patterns=files)
        except Exception as err:  # noqa: BLE001 - see _unavailable
            raise self._unavailable(err, f"publishing {repo_id}") from err
        return {"hub": self.label, "url": f"{self.endpoint}/{repo_id}", "commit": info.oid}


def hub_for(spec: str, endpoint: str, org: str):
    """``hf`` → the Hugging Face Hub; anything else → a directory hub at that path."""
    if spec == "hf":
        return HuggingFaceHub(endpoint, org)
    if not spec:
        raise InvalidArgumentError("--hub is empty; pass 'hf' or a directory")
    return DirectoryHub(Path(spec))
