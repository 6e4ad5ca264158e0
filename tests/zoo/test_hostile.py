"""Every file from a hub is hostile until checked: unsafe manifest names, bad commit ids, symlinks on publish,
damaged cache snapshots, stale records of absent artifacts, read-only snapshots, one bad package in a listing."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest

from ddzoo import constants
from ddzoo.cli import main
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.fileio import sha256_file
from ddzoo.names import validate_commit, validate_package_path
from ddzoo.package import MANIFEST, read_manifest, read_verification
from ddzoo.zoo import ModelNotFoundError, list_models, publish, pull
from tests.zoo.conftest import ORG


@pytest.mark.parametrize("name", ["model.onnx", "config.json", "README.md", "model.int8.onnx",
                                  "engines/10.13.0/sm90/model.fp16.plan", "engines/10.13.0/sm90/model.fp16.json"])
def test_safe_package_paths(name):
    assert validate_package_path(name) == name


@pytest.mark.parametrize("name", ["../evil", "engines/../../evil", "engines/10/sm90/../x", "/etc/passwd",
                                  "C:/x", "c:\\x", "engines\\10\\sm90\\x.plan", "a/b", "engines/x/y",
                                  "engines/a/b/c/d", ".hidden", "model..onnx", "", "x" * 200, "mod el.onnx",
                                  "engines//sm90/x.plan", "é.onnx"])
def test_unsafe_package_paths_are_refused(name):
    with pytest.raises(InvalidArgumentError, match="unsafe file name"):
        validate_package_path(name)


@pytest.mark.parametrize("commit", ["../../x", "main", "a" * 39, "sha256-" + "0" * 39, "A" * 40, None])
def test_bad_commit_ids_are_refused(commit):
    with pytest.raises(InvalidArgumentError, match="invalid commit id"):
        validate_commit(commit, "a hub")


def _hostile_directory_hub(package: Path, root: Path, name: str, entry: str, payload: bytes) -> Path:
    """A directory hub whose package's manifest lists ``entry`` (e.g. a path escaping the cache)."""
    folder = root / name / "main"
    shutil.copytree(package, folder)
    publish_manifest = {"format": "ddzoo-manifest/1", "files": {
        f: {"sha256": sha256_file(folder / f), "size": (folder / f).stat().st_size}
        for f in ("config.json", "model.onnx", "verification.json")}}
    target = folder / entry
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(payload)
    publish_manifest["files"][entry] = {"sha256": sha256_file(target), "size": len(payload)}
    (folder / MANIFEST).write_text(json.dumps(publish_manifest))
    return root


def _escaped(hub_copy: Path, name: str = "escaped.plan") -> list[Path]:
    """Files called ``name`` anywhere in the tests' temporary tree, except the hostile hub's own copy."""
    return [p for p in constants.ZOO_HOME.parent.rglob(name) if not p.is_relative_to(hub_copy)]


@pytest.mark.parametrize("entry", ["engines/../../../../escaped.plan", "engines/10/sm90/../../../../escaped.plan",
                                   "../escaped.plan"])
def test_path_traversal_in_a_manifest_is_refused_before_any_write(package, tmp_path, entry, capsys):
    entry = entry.replace("escaped", f"escaped-{secrets.token_hex(4)}")
    root = _hostile_directory_hub(package, tmp_path / "hub" / "a" / "b" / "c", "evil", entry, b"owned")
    code = main(["pull", "evil", "--format", "trt", "--hub", str(root), "--offline"])
    err = capsys.readouterr().err
    assert code == 1 and "unsafe file name" in err and err.count("\n") == 1
    assert _escaped(tmp_path, entry.rsplit("/", 1)[-1]) == []
    assert not (constants.ZOO_HOME / "models" / "evil" / "snapshots").exists()


def test_path_traversal_through_the_hugging_face_api_is_refused(hub, package, capsys):
    publish(package, f"{ORG}/evil-hf")
    repo = hub.repos[f"{ORG}/evil-hf"]
    commit, files = repo.files_at("main")
    manifest = json.loads(files[MANIFEST])
    manifest["files"]["engines/../../../escaped.plan"] = {"sha256": "0" * 64, "size": 1}
    files[MANIFEST] = json.dumps(manifest).encode()
    assert main(["pull", "evil-hf", "--format", "trt", "--hub", "hf"]) == 1
    assert "unsafe file name" in capsys.readouterr().err
    assert _escaped(Path("/nonexistent")) == []


def test_a_hub_answering_a_bad_commit_id_is_refused(hub, package, capsys):
    publish(package, f"{ORG}/evil-commit")
    repo = hub.repos[f"{ORG}/evil-commit"]
    commit = repo.branches["main"]
    repo.commits["../../../../tmp-evil"] = repo.commits[commit]
    repo.branches["main"] = "../../../../tmp-evil"
    assert main(["pull", "evil-commit", "--hub", "hf"]) == 1
    assert "invalid commit id" in capsys.readouterr().err
    assert not (constants.ZOO_HOME / "tmp-evil").exists()


def test_an_oversized_or_malformed_manifest_is_refused(package, tmp_path):
    (package / MANIFEST).write_bytes(b" " * (2 << 20))
    with pytest.raises(CheckpointError, match="limit"):
        read_manifest(package)
    for bad in ([1, 2], {"format": "ddzoo-manifest/1", "files": {"model.onnx": {"sha256": "x", "size": 1}}},
                {"format": "ddzoo-manifest/1", "files": {"model.onnx": {"sha256": "0" * 64, "size": "1"}}},
                "[" * 100_000):
        (package / MANIFEST).write_text(bad if isinstance(bad, str) else json.dumps(bad))
        with pytest.raises(CheckpointError):
            read_manifest(package)


def test_publish_refuses_symlinks(package, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    (package / "notes.txt").symlink_to(secret)
    with pytest.raises(InvalidArgumentError, match="symbolic links"):
        publish(package, f"{ORG}/linked", hub=str(tmp_path / "hub"))
    assert not list((tmp_path / "hub").rglob("notes.txt")) if (tmp_path / "hub").exists() else True


def test_a_damaged_snapshot_is_discarded_and_fetched_again(package, tmp_path, monkeypatch, capsys):
    hub_dir = tmp_path / "hub"
    publish(package, f"{ORG}/lenet-damaged", hub=str(hub_dir))
    folder = pull("lenet-damaged", hubs=[str(hub_dir)], offline=True)
    (folder / "model.onnx").write_bytes(b"tampered")
    rows = {r["name"]: r for r in list_models()}
    assert rows["lenet-damaged"]["status"].startswith("damaged")
    again = pull("lenet-damaged", hubs=[str(hub_dir)], offline=True)  # re-fetched from the directory hub
    assert (again / "model.onnx").read_bytes() != b"tampered"
    assert {r["name"]: r for r in list_models()}["lenet-damaged"]["status"] == "ok"
    (again / "model.onnx").write_bytes(b"tampered")
    shutil.rmtree(hub_dir)  # nowhere to fetch it from: one line saying how to fix it
    with pytest.raises(ModelNotFoundError, match="damaged and has been discarded.*run 'zoo pull lenet-damaged'"):
        pull("lenet-damaged", hubs=[str(hub_dir)], offline=True)


def test_one_bad_package_does_not_break_the_listing(package, tmp_path, capsys):
    hub_dir = tmp_path / "hub"
    publish(package, f"{ORG}/lenet-good", hub=str(hub_dir))
    pull("lenet-good", hubs=[str(hub_dir)], offline=True)
    bad = constants.ZOO_HOME / "models" / "lenet-bad" / "snapshots" / ("sha256-" + "1" * 40)
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{not json")
    rows = {r["name"]: r for r in list_models()}
    assert rows["lenet-good"]["status"] == "ok" and rows["lenet-good"]["rho2"] > 0
    assert rows["lenet-bad"]["status"].startswith(("damaged", "unreadable"))
    assert main(["list"]) == 0 and "lenet-good" in capsys.readouterr().out


def test_verify_of_a_pulled_package_judges_only_its_artifacts_and_leaves_the_cache_alone(package, tmp_path):
    hub_dir = tmp_path / "hub"
    (package / "model.fp16.onnx").unlink()  # a record of an artifact that is not published stays in the file
    assert "model.fp16.onnx" in read_verification(package)["records"]
    publish(package, f"{ORG}/lenet-ro", hub=str(hub_dir))
    folder = pull("lenet-ro", hubs=[str(hub_dir)], offline=True)
    before = {p.name: sha256_file(p) for p in folder.iterdir()}
    assert main(["verify", "lenet-ro", "--limit", "50", "--square", "0", "--max-accuracy-drop", "1",
                 "--min-rho-ratio", "0"]) == 0
    assert {p.name: sha256_file(p) for p in folder.iterdir()} == before  # the snapshot is read-only
    out = tmp_path / "verified"
    assert main(["verify", "lenet-ro", "--limit", "50", "--square", "0", "--out", str(out),
                 "--max-accuracy-drop", "1", "--min-rho-ratio", "0"]) == 0
    records = read_verification(out)["records"]
    assert set(records) == {"model.safetensors", "model.onnx", *({"model.int8.onnx"} & set(before))}
    assert records["model.onnx"]["images"] == 50 and records["model.onnx"]["gate"]["passed"]
