"""The zoo: publish → pull through a real HTTP server speaking the Hugging Face Hub API, driven by the real
huggingface_hub client; revisions, offline mode, corrupt downloads, SIGKILL mid-pull, concurrent pulls."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddzoo import constants
from ddzoo.errors import ChecksumError, InvalidArgumentError
from ddzoo.package import read_manifest
from ddzoo.verification import VerificationFailedError
from ddzoo.zoo import ModelNotFoundError, info, list_models, publish, pull
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.zoo.conftest import ORG


def _snapshots(name: str) -> list[Path]:
    folder = constants.ZOO_HOME / "models" / name / "snapshots"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _edit_onnx_doc(path: Path, text: str) -> None:
    import onnx

    model = onnx.load(str(path))
    model.doc_string = text
    onnx.save(model, str(path))


def test_publish_pull_round_trip_with_pinned_revision(hub, package):
    first = publish(package, f"{ORG}/lenet-test")
    assert first["repo"] == f"{ORG}/lenet-test" and "accuracy" in first["message"] and "ddzoo" in first["message"]
    pulled = pull("lenet-test")
    manifest = read_manifest(pulled)
    assert set(manifest["files"]) >= {"config.json", "model.safetensors", "model.onnx", "model.fp16.onnx",
                                      "verification.json", "README.md"}
    assert (pulled / "model.onnx").read_bytes() == (package / "model.onnx").read_bytes()

    _edit_onnx_doc(package / "model.fp16.onnx", "changed after verification")  # its record is now stale
    second = publish(package, f"{ORG}/lenet-test", allow_unverified=True)
    assert second["unverified"] == ["model.fp16.onnx"] and second["commit"] != first["commit"]
    latest = pull("lenet-test", formats=["onnx", "fp16"])
    assert "model.fp16.onnx" in (latest / "README.md").read_text().split("Unverified artifacts")[1]
    old = pull(f"lenet-test@{first['commit']}", formats=["onnx", "fp16"])
    assert old != latest and "Unverified artifacts" not in (old / "README.md").read_text()
    assert (old / "model.fp16.onnx").read_bytes() != (latest / "model.fp16.onnx").read_bytes()


def test_publish_to_a_branch(hub, package):
    publish(package, f"{ORG}/lenet-branch")
    result = publish(package, f"{ORG}/lenet-branch", revision="candidate")
    assert pull("lenet-branch@candidate", formats=["onnx"]).name == result["commit"]


def test_unverified_package_is_refused_before_any_upload(hub, package):
    _edit_onnx_doc(package / "model.onnx", "edited")
    with pytest.raises(VerificationFailedError, match="model.onnx: stale"):
        publish(package, f"{ORG}/lenet-refused")
    assert hub.requests == 0


def test_card_renders_verification_exactly(hub, package):
    from huggingface_hub import ModelCard

    publish(package, f"{ORG}/lenet-card")
    card = ModelCard.load(package / "README.md")
    records = {name: record for name, record in json.loads((package / "verification.json").read_text())[
        "records"].items() if (package / name).is_file()}
    results = card.data.eval_results
    assert len(results) == 2 * len(records)
    for result in results:
        record = records[result.metric_config]
        expected = record["clean_accuracy"] if result.metric_type == "accuracy" else record["deepfool"]["50"]["rho2"]
        assert result.metric_value == expected and result.dataset_type == "mnist"
    assert card.data.license == "apache-2.0" and card.data.library_name == "ddzoo"
    assert {"adversarial-robustness", "onnx"} <= set(card.data.tags)
    assert f"{records['model.onnx']['deepfool']['50']['rho2']:.4f}" in card.text
    images = records["model.onnx"]["images"]
    assert f"on {images:,} test images" in card.text and "is no sign of a more robust artifact" in card.text
    checkpoint = records["model.safetensors"]
    assert (f"FGS at ε_ref = {checkpoint['eps_ref']['fgs']:.4g} and BIM ({checkpoint['settings']['bim_steps']} steps) "
            f"at ε_ref = {checkpoint['eps_ref']['bim']:.4g} on the same {images:,} images") in card.text


def test_offline_pull_makes_no_network_call(hub, package):
    publish(package, f"{ORG}/lenet-offline")
    pull("lenet-offline", formats=["onnx"])
    before = hub.requests
    assert pull("lenet-offline", formats=["onnx"], offline=True).is_dir()
    with pytest.raises(ModelNotFoundError, match="offline"):
        pull("never-published", offline=True)
    assert hub.requests == before


def test_corrupt_download_is_refused_and_leaves_nothing(hub, package):
    publish(package, f"{ORG}/lenet-corrupt")
    hub.corrupt = {"model.onnx"}
    with pytest.raises(ChecksumError, match="model.onnx"):
        pull("lenet-corrupt")
    assert _snapshots("lenet-corrupt") == []
    assert not [p for p in (constants.ZOO_HOME / "models").iterdir() if p.name.startswith(".pull-")]


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "x..y", "white space", "-dash", "a" * 97, "é"])
def test_bad_names_are_rejected_before_any_io(hub, name):
    with pytest.raises(InvalidArgumentError, match="invalid model name"):
        pull(name)
    assert hub.requests == 0 and not (constants.ZOO_HOME / "models").exists()


def _pull_process(hub, home: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "ZOO_HOME": str(home), "HF_ENDPOINT": hub.url, "ZOO_HF_ORG": ORG, "ZOO_HUBS": ""}
    env.pop("ZOO_OFFLINE", None)
    return subprocess.Popen([sys.executable, "-m", "ddzoo.cli", "pull", name, "--hub", "hf"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_pull_leaves_no_partial_package(hub, package, tmp_path):
    publish(package, f"{ORG}/lenet-kill")
    home = tmp_path / "home"
    hub.delay_s = 0.3
    process = _pull_process(hub, home, "lenet-kill")
    time.sleep(random.uniform(1.5, 3.0))  # after the interpreter started, while files are downloading
    process.send_signal(signal.SIGKILL)
    process.wait()
    snapshots = home / "models" / "lenet-kill" / "snapshots"
    assert not snapshots.exists() or list(snapshots.iterdir()) == []
    hub.delay_s = 0.0
    again = _pull_process(hub, home, "lenet-kill")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert Path(out.strip()).parent == snapshots
    assert not list((home / "models").glob(".pull-*"))  # the killed pull's temporary folder was cleaned


def test_concurrent_pulls_both_succeed_with_one_copy(hub, package, tmp_path):
    publish(package, f"{ORG}/lenet-twice")
    home = tmp_path / "home"
    hub.delay_s = 0.05
    processes = [_pull_process(hub, home, "lenet-twice") for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[1] for o in outputs]
    assert outputs[0][0] == outputs[1][0]
    assert len(list((home / "models" / "lenet-twice" / "snapshots").iterdir())) == 1


def test_directory_hub_list_and_info(package, tmp_path, monkeypatch):
    hub_dir = tmp_path / "hub"
    publish(package, f"{ORG}/lenet-dir", hub=str(hub_dir))
    monkeypatch.setattr(constants, "LOCAL_HUBS", [hub_dir])
    folder = pull("lenet-dir", offline=True)
    rows = {r["name"]: r for r in list_models()}
    assert rows["lenet-dir"]["where"] == "cache" and rows["lenet-dir"]["rho2"] > 0
    details = info("lenet-dir")
    assert details["path"] == str(folder) and details["verification"]["model.onnx"] == "pass"
    assert details["license"] == "apache-2.0" and "model.fp16.onnx" in details["artifacts"]


def test_skip_unverified_leaves_failing_artifacts_out(package, tmp_path):
    _edit_onnx_doc(package / "model.fp16.onnx", "edited")
    result = publish(package, f"{ORG}/lenet-skip", hub=str(tmp_path / "hub"), skip_unverified=True)
    assert result["left_out"] == ["model.fp16.onnx"] and result["unverified"] == []
    folder = pull("lenet-skip", hubs=[str(tmp_path / "hub")], offline=True)
    assert not (folder / "model.fp16.onnx").exists() and (folder / "model.onnx").is_file()
    assert "model.fp16.onnx" not in read_manifest(folder)["files"]
    assert "model.fp16.onnx" not in (folder / "README.md").read_text()


def _bundled_records(name: str, into: Path) -> Path:
    """A folder named ``name`` holding a bundled package's config and verification records."""
    folder = into / name
    folder.mkdir()
    for file in ("config.json", "verification.json"):
        (folder / file).write_bytes((BUNDLED_HUB / name / "main" / file).read_bytes())
    return folder


def test_the_card_compares_with_packages_of_the_same_dataset_only(hub, package, tmp_path):
    from huggingface_hub import ModelCard

    from ddzoo.package import read_config
    from ddzoo.zoo.card import DEFENCES

    peer = _bundled_records("lenet-mnist-dd", tmp_path)
    publish(package, f"{ORG}/lenet-compared", compare=[peer])
    text = ModelCard.load(package / "README.md").text
    table = text.split("## How it compares")[1].split("## Use")[0]
    record = json.loads((peer / "verification.json").read_text())["records"]["model.safetensors"]
    row = next(line for line in table.splitlines() if line.startswith("| lenet-mnist-dd |"))
    assert "deep-defense" in row and f"{record['deepfool']['50']['rho2']:.4f} (n = {record['images']:,})" in row
    assert f"{record['strong']['best_of']['rho2']:.4f} (n = {record['strong']['images']})" in row
    assert f"{100 * record['strong']['autoattack']['Linf']['accuracy']:.1f} %" in row
    assert "| **lenet-compared** |" in table
    assert DEFENCES[read_config(package)["recipe"]["name"]] in " ".join(text.split("## Robust")[0].split())

    before = hub.requests
    with pytest.raises(InvalidArgumentError, match="fashion-mnist model, not mnist"):
        publish(package, f"{ORG}/lenet-compared", compare=[_bundled_records("lenet-fashion-mnist-ref", tmp_path)])
    assert hub.requests == before


def test_a_peer_without_a_complete_checkpoint_record_is_one_clear_error(hub, package, tmp_path):
    peer = _bundled_records("lenet-mnist-dd", tmp_path)
    records = json.loads((peer / "verification.json").read_text())
    del records["records"]["model.safetensors"]["clean_accuracy_ci95"]
    (peer / "verification.json").write_text(json.dumps(records))
    with pytest.raises(InvalidArgumentError, match="checkpoint record is incomplete.*run 'zoo verify"):
        publish(package, f"{ORG}/lenet-compared", compare=[peer])
    assert hub.requests == 0
