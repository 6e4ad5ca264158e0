"""The one-call Python API on the bundled models: load (refusals), list_models (typed), verify (typed result; a
failed gate raises). That the loaded models reproduce their cards and claims: tests/zoo/test_bundled*.py."""

from __future__ import annotations

import pytest

import ddzoo
from ddzoo.errors import InvalidArgumentError, ModelNotFoundError, VerificationFailedError
from ddzoo.zoo import pull
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.zoo.conftest import BUNDLED


def test_load_refuses_unknown_formats_and_models(tmp_path):
    import shutil

    from ddzoo.zoo.hubs import BUNDLED_HUB

    with pytest.raises(InvalidArgumentError, match="unknown format 'tflite'"):
        ddzoo.load("lenet-mnist-dd", format="tflite")
    package = shutil.copytree(BUNDLED_HUB / "lenet-mnist-dd" / "main", tmp_path / "lenet-mnist-dd")
    (package / "model.int8.onnx").unlink()  # as a package whose INT8 failed the gate is published
    with pytest.raises(InvalidArgumentError, match="no int8 ONNX artifact"):
        ddzoo.load(package, format="int8", offline=True)
    with pytest.raises(ModelNotFoundError):
        ddzoo.load("no-such-model", offline=True)
    with pytest.raises(InvalidArgumentError, match="TensorRT"):
        ddzoo.load("lenet-mnist-dd", format="trt", offline=True)


@pytest.mark.release  # reads the bundled cards' figures
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


@pytest.mark.parametrize("reference", ["lenet.v2", "lenet-mnist-dd@v1.0", "lenet-mnist-dd@v1.pt"])
def test_a_dotted_name_or_revision_is_a_reference_not_a_path(reference):
    with pytest.raises(ModelNotFoundError):
        ddzoo.load(reference, offline=True)


@pytest.mark.parametrize(("path", "message"), [("model.onnx", "no package folder"),
                                               ("some/folder", "no package folder"),
                                               ("", "no model given"), ("  ", "no model given")])
def test_a_file_a_missing_folder_or_nothing_is_a_clear_usage_error(path, message):
    with pytest.raises(InvalidArgumentError, match=message):
        ddzoo.load(path, offline=True)
