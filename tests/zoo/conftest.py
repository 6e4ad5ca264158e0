"""Fixtures of the zoo tests: a Hugging Face API server on 127.0.0.1 and a verified LeNet package."""

from __future__ import annotations

import shutil

import pytest

from ddzoo import constants
from tests.zoo.hub_server import HubServer

ORG = "testorg"


@pytest.fixture
def hub(monkeypatch):
    with HubServer() as server:
        monkeypatch.setattr(constants, "HF_ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HF_ORG", ORG)
        monkeypatch.setattr(constants, "LOCAL_HUBS", [])
        monkeypatch.setattr(constants, "OFFLINE", False)
        yield server


@pytest.fixture
def package(verified_package, tmp_path):
    """The verified package with only the artifacts that passed the gate (the 1-epoch LeNet's INT8 may not)."""
    from ddzoo.package import verification_status

    folder = tmp_path / "lenet-mnist-test"
    shutil.copytree(verified_package[0], folder)
    for name, status in verification_status(folder).items():
        if status != "pass":
            (folder / name).unlink()
    assert (folder / "model.onnx").is_file() and (folder / "model.fp16.onnx").is_file()
    return folder
