"""Fixtures of the zoo tests: a Hugging Face API server on 127.0.0.1 and a verified LeNet package."""

from __future__ import annotations

import shutil

import pytest

from ddzoo import constants
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.zoo.hub_server import HubServer

ORG = "testorg"
BUNDLED = sorted(p.parent.parent.name for p in BUNDLED_HUB.glob("*/main/manifest.json"))  # the bundled models


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
    """A copy of the verified package, every artifact of it passing the gate (fp32, fp16 and INT8: the test LeNet's
    INT8, 7-bit weights, agrees with its checkpoint on all 200 images; on an AVX2-only CPU its ρ₂ ratio was 1.05), so
    a regression in any of them fails here."""
    from ddzoo.package import verification_status

    folder = tmp_path / "lenet-mnist-test"
    shutil.copytree(verified_package[0], folder)
    status = verification_status(folder)
    assert set(status) == {"model.safetensors", "model.onnx", "model.fp16.onnx", "model.int8.onnx"}, status
    assert set(status.values()) == {"pass"}, f"an artifact of the test package fails its gate: {status}"
    return folder
