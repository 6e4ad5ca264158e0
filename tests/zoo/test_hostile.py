"""Every file from a hub is hostile until checked: unsafe manifest names, bad commit ids, symlinks on publish,
damaged cache snapshots, stale records of absent artifacts, read-only snapshots, one bad package in a listing;
and, through both the directory hub and the Hugging Face API server: validators that match whole strings only,
downloads capped at their declared size, the reading limits applied at pull time, missing or special files,
and hostile input echoed bounded — each a clear one-line error naming the hub, with nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path

import pytest

from ddzoo import constants
from ddzoo.cli import main
from ddzoo.errors import CheckpointError, HubContentError, InvalidArgumentError
from ddzoo.fileio import sha256_file
from ddzoo.names import validate_commit, validate_name, validate_package_path, validate_revision
from ddzoo.package import MANIFEST, read_manifest, read_verification
from ddzoo.zoo import ModelNotFoundError, list_models, publish, pull
from ddzoo.zoo.hubs import DirectoryHub
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
    with pytest.raises(HubContentError, match="unsafe file name"):
        validate_package_path(name)


@pytest.mark.parametrize("commit", ["../../x", "main", "a" * 39, "sha256-" + "0" * 39, "A" * 40, None])
def test_bad_commit_ids_are_refused(commit):
    with pytest.raises(HubContentError, match="invalid commit id"):
        validate_commit(commit, "a hub")


def _manifest_sha_check(sha: str) -> None:
    """read_manifest on a one-entry manifest whose sha256 is ``sha``."""
    folder = constants.ZOO_HOME / f"m-{secrets.token_hex(4)}"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format": "ddzoo-manifest/1",
                                               "files": {"model.onnx": {"sha256": sha, "size": 1}}}))
    read_manifest(folder)


VALIDATORS = [
    (validate_name, "lenet-mnist-dd", InvalidArgumentError),
    (validate_revision, "release/v1.2", InvalidArgumentError),
    (validate_package_path, "engines/10.13.0/sm80/model.fp16.plan", HubContentError),
    (lambda c: validate_commit(c, "a hub"), "0123456789abcdef0123456789abcdef01234567", HubContentError),
    (lambda c: validate_commit(c, "a hub"), "sha256-" + "ab" * 20, HubContentError),
    (_manifest_sha_check, "0" * 64, CheckpointError),
]


@pytest.mark.parametrize("validator, good, error", VALIDATORS)
@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " ", "\t"])
def test_every_validator_matches_the_whole_string(validator, good, error, suffix):
    """``$`` also matches before a final newline: every pattern must match the whole string."""
    validator(good)
    with pytest.raises(error):
        validator(good + suffix)
    with pytest.raises(error):
        validator(suffix + good)


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
    with pytest.raises(ModelNotFoundError, match=r"damaged and has been discarded.*retry online \(without "
                                                 r"offline=True or ZOO_OFFLINE=1\)$"):
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
    assert set(records) == {"model.safetensors", "model.onnx", "model.int8.onnx"}
    assert records["model.onnx"]["images"] == 50 and records["model.onnx"]["gate"]["passed"]


# --------------------------------------------------------------------- hostile hubs, directory and Hugging Face
KINDS = ["dir", "hf", "hf-chunked"]  # hf-chunked: every file sent without a Content-Length (as a stream)


class HostileHub:
    """The package published as ``victim-<kind>`` to a directory hub or the in-test Hugging Face server, ready
    to be tampered with file by file."""

    def __init__(self, kind: str, package: Path, tmp_path: Path, server=None):
        self.kind, self.name, self.server = kind, f"victim-{kind}", server
        if kind == "dir":
            self.root = tmp_path / "dir-hub"
            publish(package, f"{ORG}/{self.name}", hub=str(self.root))
            self.folder = self.root / self.name / "main"
            self.args, self.label = ["--hub", str(self.root), "--offline"], f"directory hub {self.root}"
        else:
            publish(package, f"{ORG}/{self.name}")
            repo = server.repos[f"{ORG}/{self.name}"]
            self.files = repo.commits[repo.branches["main"]]
            self.args, self.label = ["--hub", "hf"], f"Hugging Face Hub {server.url}"
            server.chunked = kind == "hf-chunked"
        self.manifest = json.loads(self.read(MANIFEST))

    def read(self, file: str) -> bytes:
        return (self.folder / file).read_bytes() if self.kind == "dir" else self.files[file]

    def write(self, file: str, data: bytes) -> None:
        if self.kind == "dir":
            (self.folder / file).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / file).write_bytes(data)
        else:
            self.files[file] = data

    def declare(self, file: str, size: int, sha256: str = "0" * 64) -> None:
        """List ``file`` in the published manifest with this size and sha256."""
        self.manifest["files"][file] = {"sha256": sha256, "size": size}
        self.write(MANIFEST, json.dumps(self.manifest).encode())

    def pull(self, capsys, *formats: str) -> tuple[int, str]:
        code = main(["pull", self.name, *self.args, *[a for f in formats for a in ("--format", f)]])
        return code, capsys.readouterr().err


@pytest.fixture(params=KINDS[:2])
def hostile(request, package, tmp_path) -> HostileHub:
    server = request.getfixturevalue("hub") if request.param.startswith("hf") else None
    return HostileHub(request.param, package, tmp_path, server)


def _refused(hub: HostileHub, code: int, err: str, *phrases: str) -> None:
    """One line naming the hub (never the hidden staging folder), exit 1, and nothing left in ZOO_HOME."""
    assert code == 1 and err.count("\n") == 1 and err.startswith("zoo: error: "), err
    assert hub.label in err and ".pull-" not in err and "internal error" not in err, err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    assert [p for p in constants.ZOO_HOME.rglob("*") if not p.is_dir()] == []


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (Linux)."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar"))
               .split()[1])


@pytest.mark.parametrize("hostile", KINDS, indirect=True)
@pytest.mark.parametrize("file", ["model.onnx", MANIFEST])
def test_a_file_larger_than_declared_is_stopped_at_its_cap(hostile, file, capsys):
    """A hub serving 1 GiB for a file costs its declared size (the manifest: the 1 MiB ddzoo reads of one)."""
    limit = 1 << 20 if file == MANIFEST else hostile.manifest["files"][file]["size"]
    before = _bytes_read()
    if hostile.kind == "dir":  # a sparse 1 GiB file: nothing on disk, everything to read
        os.truncate(hostile.folder / file, 1 << 30)
    else:
        hostile.server.inflate[file] = 1 << 30
    code, err = hostile.pull(capsys)
    _refused(hostile, code, err, f"{file} holds more than the {limit:,} bytes")
    if hostile.kind == "dir":
        assert _bytes_read() - before < 32 << 20
    else:
        assert hostile.server.sent < 64 << 20  # what the socket buffers took before the client hung up


@pytest.mark.parametrize("hostile", KINDS, indirect=True)
def test_a_file_smaller_than_declared_is_a_size_mismatch_naming_the_hub(hostile, capsys):
    hostile.write("model.onnx", hostile.read("model.onnx")[:100])
    code, err = hostile.pull(capsys)
    _refused(hostile, code, err, "model.onnx: size 100 bytes does not match the expected",
             f"{hostile.manifest['files']['model.onnx']['size']:,} bytes of the manifest")
    assert "sha256 size" not in err


@pytest.mark.parametrize("file, size", [("config.json", 105_000_000), ("verification.json", 17 << 20),
                                        ("README.md", 2 << 20), ("export.json", 17 << 20)])
def test_metadata_over_its_reading_limit_is_refused_before_it_is_fetched(hostile, file, size, capsys):
    """A package ddzoo could not read afterwards (`zoo info`, `zoo serve`) is not cached in the first place."""
    sha = "0" * 64
    if hostile.kind == "dir":  # the real bytes, so that only the size is wrong
        os.truncate(hostile.folder / file, size)
        sha = sha256_file(hostile.folder / file)
    hostile.declare(file, size, sha)
    before = _bytes_read()
    code, err = hostile.pull(capsys)
    _refused(hostile, code, err, f"lists {file} at {size:,} bytes, over the")
    if hostile.kind == "dir":
        assert _bytes_read() - before < 16 << 20
    else:
        assert hostile.server.downloads == [MANIFEST]


@pytest.mark.parametrize("entry", ["engines/10.13.0/sm80/model.fp16.plan\n", "model.onnx\n", "README.md\r"])
def test_a_manifest_name_with_a_trailing_newline_is_refused(hostile, entry, capsys):
    hostile.write(entry, b"plan")  # the file exists under that very name
    hostile.declare(entry, 4, hashlib.sha256(b"plan").hexdigest())
    code, err = hostile.pull(capsys, "trt")
    _refused(hostile, code, err, "unsafe file name", repr(entry))


def test_a_hostile_file_name_is_echoed_bounded(hostile, capsys):
    hostile.declare("engines/10.13.0/sm80/" + "x" * 5000, 1)
    code, err = hostile.pull(capsys, "trt")
    _refused(hostile, code, err, "unsafe file name", "(5,023 characters)")
    assert len(err) < 500


@pytest.mark.parametrize("how", ["missing", "fifo", "folder", "dangling link"])
def test_a_listed_file_missing_or_special_in_a_directory_hub_is_a_hub_error(package, tmp_path, how, capsys):
    hub = HostileHub("dir", package, tmp_path)
    target = hub.folder / "model.onnx"
    target.unlink()
    {"missing": lambda: None, "fifo": lambda: os.mkfifo(target), "folder": target.mkdir,
     "dangling link": lambda: target.symlink_to(tmp_path / "nowhere")}[how]()
    code, err = hub.pull(capsys)
    _refused(hub, code, err, "model.onnx listed in the package but not a file of the hub")


def test_a_listed_file_missing_from_the_hugging_face_hub_is_a_hub_error(hub, package, tmp_path, capsys):
    hostile = HostileHub("hf", package, tmp_path, hub)
    del hostile.files["model.onnx"]
    code, err = hostile.pull(capsys)
    _refused(hostile, code, err, "model.onnx listed in the package but not a file of the hub")


@pytest.mark.parametrize("how", ["missing", "fifo", "folder"])
def test_fetch_itself_refuses_what_appeared_after_the_listing(hub, package, tmp_path, how):
    """A file gone or swapped for a FIFO between listing and download: a hub error, and a FIFO never blocks."""
    server_hub = HostileHub("hf", package, tmp_path / "hf", hub)
    dir_hub = HostileHub("dir", package, tmp_path / "dir")
    target = dir_hub.folder / "model.onnx"
    target.unlink()
    {"missing": lambda: None, "fifo": lambda: os.mkfifo(target), "folder": target.mkdir}[how]()
    expected = {"missing": "missing from the hub", "fifo": "not a regular file", "folder": "not a regular file"}
    with pytest.raises(HubContentError, match=expected[how]):
        DirectoryHub(dir_hub.root).fetch(dir_hub.name, "main", "-", {"model.onnx": 10}, tmp_path / "out")
    del server_hub.files["model.onnx"]
    from ddzoo.zoo.hubs import HuggingFaceHub

    with pytest.raises(HubContentError, match="model.onnx is listed in the package but missing from the hub"):
        HuggingFaceHub(hub.url, ORG).fetch(server_hub.name, "main", "main", {"model.onnx": 10}, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_commit_id_ending_in_a_newline_is_refused_before_any_download(hub, package, tmp_path, capsys):
    hostile = HostileHub("hf", package, tmp_path, hub)
    repo = hub.repos[f"{ORG}/{hostile.name}"]
    commit = repo.branches["main"]
    repo.commits[commit + "\n"] = repo.commits[commit]
    repo.branches["main"] = commit + "\n"
    code, err = hostile.pull(capsys)
    _refused(hostile, code, err, "answered an invalid commit id", repr(commit + "\n"))
    assert "ETag" not in err and hub.downloads == []


LONG = "a" * 5000


@pytest.mark.parametrize("argv", [["pull", LONG], ["pull", f"lenet-mnist-dd@{LONG}"], ["pull", "x" * 100_000],
                                  ["info", LONG], ["serve", f"{LONG}/package"],
                                  ["verify", f"{LONG}.onnx", "--dataset", "mnist"],
                                  ["pull", "lenet-mnist-dd", "--format", LONG, "--offline"]])
def test_hostile_command_line_input_is_echoed_bounded(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and len(err) < 1100, (code, len(err))
    assert "characters)" in err  # said how long it was instead of repeating it
