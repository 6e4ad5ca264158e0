"""Where model packages live: the Hugging Face Hub (or any server speaking its API) and directory hubs.

A directory hub keeps ``<root>/<name>/<revision>/<files>``; the hub bundled with ddzoo is one, inside the
package (``ddzoo/hub``). Every hub answers ``resolve`` (a content id and the file list, or None when it does
not hold the model), ``fetch`` (files into a folder) and, except the bundled one, ``publish``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ddzoo.errors import HubUnavailableError, InvalidArgumentError
from ddzoo.fileio import building_dir, copy_files, sha256_file
from ddzoo.names import validate_package_path
from ddzoo.optional import require
from ddzoo.package import MANIFEST, package_files

BUNDLED_HUB = Path(__file__).resolve().parents[1] / "hub"


def import_hub():
    """huggingface_hub (the ``hub`` extra)."""
    return require("huggingface_hub", "model cards and the Hugging Face Hub", extra="hub")


class DirectoryHub:
    """Packages in ``<root>/<name>/<revision>/``; the content id is the sha256 of the package's manifest."""

    def __init__(self, root: Path, label: str | None = None):
        self.root = Path(root)
        self.label = label or f"directory hub {self.root}"

    def resolve(self, name: str, revision: str) -> tuple[str, list[str]] | None:
        folder = self.root / name / revision
        if not (folder / MANIFEST).is_file():
            return None
        return "sha256-" + sha256_file(folder / MANIFEST)[:40], [*package_files(folder), MANIFEST]

    def fetch(self, name: str, revision: str, commit: str, files: list[str], dest: Path) -> None:
        copy_files(self.root / name / revision, dest, files)

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


class HuggingFaceHub:
    """``<org>/<name>`` on a Hugging Face Hub endpoint, through huggingface_hub's own client."""

    def __init__(self, endpoint: str, org: str, token: str | None = None):
        self.endpoint, self.org, self.token = endpoint, org, token
        self.label = f"Hugging Face Hub {endpoint} ({org})"

    def _api(self):
        return import_hub().HfApi(endpoint=self.endpoint, token=self.token)

    def _unavailable(self, err: Exception, doing: str) -> HubUnavailableError:
        """Any failure inside the client (transport errors of its HTTP library included: huggingface_hub 2.x
        raises httpx errors that are neither OSError nor HfHubHTTPError) as one line naming the hub."""
        first = (str(err).splitlines() or [""])[0][:300]
        return HubUnavailableError(f"{self.label}: {doing}: {type(err).__name__}: {first}; check the network "
                                   "and HF_ENDPOINT, or pull with --offline")

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

    def fetch(self, name: str, revision: str, commit: str, files: list[str], dest: Path) -> None:
        hub = import_hub()
        for file in files:
            try:
                hub.hf_hub_download(f"{self.org}/{name}", validate_package_path(file), revision=commit,
                                    local_dir=dest, endpoint=self.endpoint, token=self.token)
            except Exception as err:  # noqa: BLE001 - see _unavailable
                raise self._unavailable(err, f"downloading {file}") from err
        shutil.rmtree(dest / ".cache", ignore_errors=True)  # huggingface_hub's local-dir bookkeeping

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
