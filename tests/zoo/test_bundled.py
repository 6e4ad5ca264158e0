"""The hub bundled with ddzoo: its packages pull on a fresh offline machine and hold what they claim, measured on
the loaded models (Deep Defense's larger ρ₂, adversarial training's PGD accuracy, Parseval's tight frames).
Release tier: a republished model changes them."""

from __future__ import annotations

import json

import pytest
import torch

import ddzoo
from ddzoo.cli import main
from ddzoo.data import load_split
from ddzoo.package import read_config, read_manifest, verification_status
from ddzoo.zoo import list_models, pull
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.zoo.conftest import BUNDLED

pytestmark = pytest.mark.release


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
    assert main(["list", "--dataset", "mnist", "--sort", "rho2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["dataset"] == "mnist" for r in rows)
    assert [r["rho2"] for r in rows] == sorted((r["rho2"] for r in rows), reverse=True)
    # on MNIST adversarial training's DeepFool rho2 is the largest, then Deep Defense's; the reference's is last
    assert [r["name"] for r in rows] == ["lenet-mnist-at", "lenet-mnist-dd", "lenet-mnist-parseval",
                                         "lenet-mnist-ref"]
    # on CIFAR-10 adversarial training at the field's budgets leads by far (ρ₂ 8-10x the reference's), then at
    # ε 0.5/255; Parseval is barely above the reference
    assert main(["list", "--dataset", "cifar10", "--sort", "rho2", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [
        "resnet-cifar10-at-linf", "resnet-cifar10-at-l2", "resnet-cifar10-at", "resnet-cifar10-dd",
        "resnet-cifar10-parseval", "resnet-cifar10-ref"]
    assert main(["list", "--recipe", "deep-defense", "--min-rho2", "0.2", "--json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"lenet-mnist-dd"}
    assert main(["list", "--dataset", "fashion-mnist", "--sort", "autoattack", "--json"]) == 0
    assert [r["recipe"] for r in json.loads(capsys.readouterr().out)] == ["deep-defense", "adversarial", "parseval",
                                                                          "reference"]
    assert main(["list", "--sort", "speed"]) == 2
    assert "unknown sort key 'speed'" in capsys.readouterr().err


def test_zoo_list_names_what_measured_each_figure(capsys):
    """Every figure of the table names its n, and every robust one its attack, norm and ε (issue 28 item 4)."""
    rows = {r["name"]: r for r in list_models()}
    for name in BUNDLED:
        verification = json.loads((BUNDLED_HUB / name / "main" / "verification.json").read_text())["records"]
        assert rows[name]["accuracy_images"] == verification["model.onnx"]["images"]
    assert rows["resnet-cifar10-dd"]["autoattack_label"] == "AutoAttack ℓ∞ 8/255, n = 500"
    assert main(["list", "--dataset", "cifar10"]) == 0
    table = capsys.readouterr().out
    assert "AutoAttack ℓ2 0.5" in table and "AutoAttack ℓ∞ 8/255" in table and "(8/255, n=500)" in table
    assert f"(n={rows['resnet-cifar10-ref']['accuracy_images']:,})" in table


def _family_reference(name: str) -> str | None:
    """The bundled reference model of ``name``'s family (``resnet-cifar10-at-l2`` → ``resnet-cifar10-ref``)."""
    refs = [ref for ref in BUNDLED if ref.endswith("-ref") and ref != name and name.startswith(ref[: -len("ref")])]
    return refs[0] if len(refs) == 1 else None


def _bundled_recipe(name: str) -> str:
    return json.loads((BUNDLED_HUB / name / "main" / "config.json").read_text())["recipe"]["name"]


PAIRS = [name for name in BUNDLED if name.endswith("-dd") and _family_reference(name)]


@pytest.mark.parametrize("dd_name", PAIRS)
def test_every_bundled_deep_defense_model_has_a_larger_rho2_than_its_reference(dd_name, data_dir):
    """The zoo's central claim, measured here (not read from a card): DeepFool ρ₂ of the loaded Deep Defense
    model on the first test images (LeNets 200; ResNet-20s 100, where resnet-cifar10-dd's is 1.48x) is well above
    its reference's."""
    from ddzoo.attacks import attack_copy
    from ddzoo.attacks.deepfool import deepfool
    from ddzoo.eval.robustness import default_screen

    config = read_config(pull(dd_name, offline=True))
    x, _ = load_split(config["dataset"], "test").tensors(limit=100 if config["arch"].startswith("resnet") else 200)
    rho = {}
    for name in (dd_name, _family_reference(dd_name)):
        model = attack_copy(ddzoo.load(name, offline=True))  # the same function, BN folded: faster
        rho[name] = deepfool(model, x, screen=default_screen()).rho(x).mean().item()  # (screen: same result)
    assert rho[dd_name] > 1.3 * rho[_family_reference(dd_name)], rho


ADVERSARIAL = [name for name in BUNDLED if _bundled_recipe(name) == "adversarial" and _family_reference(name)]
PARSEVAL = [name for name in BUNDLED if name.endswith("-parseval") and _family_reference(name)]


@pytest.mark.parametrize("at_name", ADVERSARIAL)
def test_every_bundled_adversarially_trained_model_resists_pgd_at_its_eps(at_name, data_dir):
    """Adversarial training's defining claim, measured on the loaded models: at the budget it trained at, PGD
    (random start, seed 0) leaves more of the first test images right than on its reference. LeNets: PGD-20 on
    500 images; ResNet-20s: PGD-10 on 100. Measured: Fashion-MNIST, ℓ∞ 0.0125: 86.8 % vs 81.8 %; MNIST, ℓ∞ 0.15:
    87.6 % vs 18.6 %; CIFAR-10, ℓ∞ 0.5/255: 81.0 % vs 52.0 %; ℓ∞ 8/255 (resnet-cifar10-at-linf): 41.0 % vs 0.0 %;
    ℓ2 0.5 (resnet-cifar10-at-l2): 61.0 % vs 0.0 %."""
    from ddzoo.attacks import attack_copy, pgd

    config = read_config(pull(at_name, offline=True))
    recipe = config["recipe"]
    resnet = config["arch"].startswith("resnet")
    x, y = load_split(config["dataset"], "test").tensors(limit=100 if resnet else 500)
    robust = {}
    for name in (at_name, _family_reference(at_name)):
        model = attack_copy(ddzoo.load(name, offline=True))  # the same function, BN folded: faster
        adversarial = pgd(model, x, y, recipe["eps"], norm=recipe["norm"], steps=10 if resnet else 20,
                          generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            robust[name] = (model(adversarial).argmax(1) == y).float().mean().item()
    assert robust[at_name] > robust[_family_reference(at_name)] + 0.03, robust


@pytest.mark.parametrize("parseval_name", PARSEVAL)
def test_every_bundled_parseval_model_is_closer_to_tight_frames_than_its_reference(parseval_name):
    """Parseval training's defining property on the shipped weights: the layers' summed ‖M Mᵀ − I‖ is under half
    its reference's (Fashion-MNIST, β 3e-5: 15.9 vs 49.9, the convolutions moving most; the small fully
    connected layers barely move at that β; CIFAR-10's ResNet-20, β 1e-4: 41.0 vs 149.7)."""
    from ddzoo.train.parseval import parseval_deviation

    deviation = {name: sum(parseval_deviation(ddzoo.load(name, offline=True)).values())
                 for name in (parseval_name, _family_reference(parseval_name))}
    assert deviation[parseval_name] < 0.5 * deviation[_family_reference(parseval_name)], deviation
