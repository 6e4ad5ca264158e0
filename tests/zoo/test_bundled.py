"""The hub bundled with ddzoo: its packages pull on a fresh offline machine and hold what they claim."""

from __future__ import annotations

import pytest

from ddzoo.cli import main
from ddzoo.package import read_manifest, verification_status
from ddzoo.zoo import list_models, pull
from ddzoo.zoo.hubs import BUNDLED_HUB

BUNDLED = sorted(p.parent.parent.name for p in BUNDLED_HUB.glob("*/main/manifest.json"))


def test_the_zoos_own_models_are_bundled():
    assert {"lenet-mnist-ref", "lenet-mnist-dd", "lenet-fashion-mnist-ref", "lenet-fashion-mnist-dd"} <= set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_offline_pull_of_a_bundled_model(name, capsys):
    assert main(["pull", name, "--offline"]) == 0  # the autouse fixture gives a fresh, empty ZOO_HOME
    folder = pull(name, offline=True)
    assert capsys.readouterr().out.strip() == str(folder)
    manifest = read_manifest(folder)
    assert {"config.json", "model.onnx", "verification.json", "README.md"} <= set(manifest["files"])
    status = verification_status(folder)
    assert status["model.onnx"] == "pass"
    assert all(status[f] == "pass" for f in manifest["files"] if f.endswith(".onnx"))  # only passing artifacts
    assert [row["where"] for row in list_models() if row["name"] == name] == ["cache"]  # once, not bundled too


def test_zoo_list_filters_and_sorts_by_robustness(capsys):
    import json

    assert main(["list", "--dataset", "mnist", "--sort", "rho2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["dataset"] == "mnist" for r in rows)
    assert [r["rho2"] for r in rows] == sorted((r["rho2"] for r in rows), reverse=True)
    # on MNIST adversarial training's DeepFool rho2 is the largest, then Deep Defense's; the reference's is last
    assert [r["name"] for r in rows] == ["lenet-mnist-at", "lenet-mnist-dd", "lenet-mnist-parseval",
                                         "lenet-mnist-ref"]
    # on CIFAR-10 adversarial training (ε 0.5/255) leads by far; Parseval is barely above the reference
    assert main(["list", "--dataset", "cifar10", "--sort", "rho2", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [
        "resnet-cifar10-at", "resnet-cifar10-dd", "resnet-cifar10-parseval", "resnet-cifar10-ref"]
    assert main(["list", "--recipe", "deep-defense", "--min-rho2", "0.2", "--json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"lenet-mnist-dd"}
    assert main(["list", "--dataset", "fashion-mnist", "--sort", "autoattack", "--json"]) == 0
    assert [r["recipe"] for r in json.loads(capsys.readouterr().out)] == ["deep-defense", "adversarial", "parseval",
                                                                          "reference"]
    assert main(["list", "--sort", "speed"]) == 2
    assert "unknown sort key 'speed'" in capsys.readouterr().err
