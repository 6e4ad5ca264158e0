"""The one-call Python API on the bundled models: load (torch and ONNX agree and reproduce the card),
list_models (typed), verify (typed result; a failed gate raises)."""

from __future__ import annotations

import pytest
import torch

import ddzoo
from ddzoo.data import load_split
from ddzoo.errors import InvalidArgumentError, ModelNotFoundError, VerificationFailedError
from ddzoo.package import package_artifacts, read_config, read_verification
from ddzoo.zoo import pull
from ddzoo.zoo.hubs import BUNDLED_HUB

BUNDLED = sorted(p.parent.parent.name for p in BUNDLED_HUB.glob("*/main/manifest.json"))


@pytest.mark.parametrize("name", BUNDLED)
def test_loaded_models_reproduce_their_card(name, data_dir):
    """torch module and every ONNX artifact reach the accuracy their verification record (the card) states on
    the images it names, and the torch module agrees with the fp32 ONNX runner."""
    folder = pull(name, offline=True)
    records = read_verification(folder)["records"]
    images = records["model.onnx"]["images"]
    x, y = load_split(read_config(folder)["dataset"], "test").tensors(limit=images)
    model = ddzoo.load(name, offline=True)
    assert isinstance(model, torch.nn.Module) and not model.training
    with torch.no_grad():
        torch_logits = model(x)
    assert (torch_logits.argmax(1) == y).float().mean().item() == pytest.approx(
        records["model.safetensors"]["clean_accuracy"], abs=1 / images)
    for artifact in package_artifacts(folder):
        fmt = {"model.onnx": "onnx", "model.fp16.onnx": "fp16", "model.int8.onnx": "int8"}[artifact]
        with ddzoo.load(name, format=fmt, offline=True) as runner:
            logits = runner.predict(x)
        assert runner.precision == ("fp32" if fmt == "onnx" else fmt)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        assert accuracy == pytest.approx(records[artifact]["clean_accuracy"], abs=1 / images), artifact
        if fmt == "onnx":
            assert (logits - torch_logits).abs().max().item() < 1e-3
            assert (logits.argmax(1) == torch_logits.argmax(1)).all()


def _family_reference(name: str) -> str:
    return name.rsplit("-", 1)[0] + "-ref"


PAIRS = [name for name in BUNDLED if name.endswith("-dd") and _family_reference(name) in BUNDLED]


@pytest.mark.parametrize("dd_name", PAIRS)
def test_every_bundled_deep_defense_model_has_a_larger_rho2_than_its_reference(dd_name, data_dir):
    """The zoo's central claim, measured here (not read from a card): DeepFool ρ₂ of the loaded Deep Defense
    model on the first 200 test images is well above its reference's."""
    from ddzoo.attacks.deepfool import deepfool

    x, _ = load_split(read_config(pull(dd_name, offline=True))["dataset"], "test").tensors(limit=200)
    rho = {}
    for name in (dd_name, _family_reference(dd_name)):
        model = ddzoo.load(name, offline=True)
        rho[name] = deepfool(model, x).rho(x).mean().item()
    assert rho[dd_name] > 1.3 * rho[_family_reference(dd_name)], rho


def test_load_refuses_unknown_formats_and_models():
    with pytest.raises(InvalidArgumentError, match="unknown format 'tflite'"):
        ddzoo.load("lenet-mnist-dd", format="tflite")
    with pytest.raises(InvalidArgumentError, match="no int8 artifact"):
        ddzoo.load("resnet-cifar10-dd", format="int8", offline=True)  # its INT8 failed the gate: not published
    with pytest.raises(ModelNotFoundError):
        ddzoo.load("no-such-model", offline=True)
    with pytest.raises(InvalidArgumentError, match="TensorRT"):
        ddzoo.load("lenet-mnist-dd", format="trt", offline=True)


def test_list_models_is_typed():
    models = {m.name: m for m in ddzoo.list_models()}
    assert set(BUNDLED) <= set(models)
    dd = models["lenet-mnist-dd"]
    assert isinstance(dd, ddzoo.PublishedModel) and dd.where == "bundled" and dd.status == "ok"
    assert dd.arch == "lenet" and dd.recipe == "deep-defense" and 0.98 < dd.accuracy <= 1
    assert dd.rho2 > models["lenet-mnist-ref"].rho2 * 1.4  # the zoo's claim, as its cards state it


def test_verify_returns_a_typed_result_and_raises_on_a_failed_gate(data_dir):
    result = ddzoo.verify("lenet-mnist-dd", limit=40, square=0, max_accuracy_drop=1.0, min_rho_ratio=0.0,
                          offline=True)
    assert isinstance(result, ddzoo.VerificationResult) and result.passed and result.failures == {}
    assert set(result.records) == {"model.safetensors", "model.onnx", "model.fp16.onnx", "model.int8.onnx"}
    assert result.records["model.onnx"]["images"] == 40
    with pytest.raises(VerificationFailedError, match="rho2 ratio"):
        ddzoo.verify("lenet-mnist-dd", limit=40, square=0, min_rho_ratio=1.5, offline=True)
    failed = ddzoo.verify("lenet-mnist-dd", limit=40, square=0, min_rho_ratio=1.5, raise_on_failure=False,
                          offline=True)
    assert not failed.passed and set(failed.failures) == {"model.onnx", "model.fp16.onnx", "model.int8.onnx"}


ADVERSARIAL = [name for name in BUNDLED if name.endswith("-at") and _family_reference(name) in BUNDLED]
PARSEVAL = [name for name in BUNDLED if name.endswith("-parseval") and _family_reference(name) in BUNDLED]


@pytest.mark.parametrize("at_name", ADVERSARIAL)
def test_every_bundled_adversarially_trained_model_resists_pgd_at_its_eps(at_name, data_dir):
    """Adversarial training's defining claim, measured on the loaded models: at the ε it trained at, a 20-step
    PGD leaves more of the first test images right than on its reference (500 images, 100 for the ResNet;
    measured: Fashion-MNIST, ε 0.0125: 86.8 % vs 81.8 %; MNIST, ε 0.15: 87.6 % vs 18.6 %; CIFAR-10, ε 0.5/255:
    81 % vs 52 %)."""
    from ddzoo.attacks import pgd

    config = read_config(pull(at_name, offline=True))
    recipe = config["recipe"]
    x, y = load_split(config["dataset"], "test").tensors(limit=100 if config["arch"].startswith("resnet") else 500)
    robust = {}
    for name in (at_name, _family_reference(at_name)):
        model = ddzoo.load(name, offline=True)
        adversarial = pgd(model, x, y, recipe["eps"], norm=recipe["norm"], steps=20,
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


def test_a_pulled_bundled_model_is_listed_once_and_another_revision_beside_it(tmp_path):
    """Pulling a bundled model copies it into the cache: the same content, listed once (as cached); a cached
    revision with other content is a model of its own."""
    import shutil

    from ddzoo import constants
    from ddzoo.package import write_manifest

    def rows() -> list:
        return [m for m in ddzoo.list_models() if m.name == "lenet-mnist-dd"]

    assert [(m.where, m.revision) for m in rows()] == [("bundled", "main")]
    folder = pull("lenet-mnist-dd", offline=True)
    assert folder.is_relative_to(constants.ZOO_HOME)  # now in the cache too: listed once, as the copy load uses
    assert [(m.where, m.revision, m.status) for m in rows()] == [("cache", folder.name, "ok")]
    other = tmp_path / "hub" / "lenet-mnist-dd" / "v2"
    shutil.copytree(BUNDLED_HUB / "lenet-mnist-dd" / "main", other)
    (other / "README.md").write_text((other / "README.md").read_text() + "\nA second revision.\n")
    write_manifest(other)
    second = pull("lenet-mnist-dd@v2", hubs=[str(tmp_path / "hub")], offline=True)
    assert sorted((m.where, m.revision) for m in rows()) == sorted([("cache", folder.name), ("cache", second.name)])


def test_errors_for_python_callers_name_the_python_spelling(monkeypatch):
    """The offline hint says ``offline=True`` to a Python caller (``--offline`` is the command line's)."""
    import socket

    from ddzoo import constants

    with pytest.raises(ModelNotFoundError) as offline:
        ddzoo.load("no-such-model", offline=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setattr(constants, "HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelNotFoundError) as unreachable:
        ddzoo.load("no-such-model", offline=False)
    assert "retry online (without offline=True or ZOO_OFFLINE=1)" in str(offline.value)
    assert "resolving the model" in str(unreachable.value)
    assert str(unreachable.value).endswith("or search only the cache and local hubs with offline=True")
    assert "--offline" not in str(offline.value) + str(unreachable.value)
