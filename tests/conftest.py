"""Shared fixtures: every cache in a temp dir, the real datasets, one small trained LeNet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ddzoo import constants

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point ZOO_HOME at a fresh temp dir and forbid downloads unless a test allows them."""
    home = tmp_path_factory.mktemp("zoo_home")
    monkeypatch.setattr(constants, "ZOO_HOME", home)
    monkeypatch.setattr(constants, "OFFLINE", True)
    return home


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets (ZOO_DATA_DIR, else ../shared/data)."""
    folder = Path(os.environ.get("ZOO_DATA_DIR") or SHARED_DATA)
    if not (folder / "mnist.npz").is_file():
        pytest.fail(f"real datasets not found in {folder}; set ZOO_DATA_DIR to the shared data folder")
    constants.ZOO_DATA_DIR = folder
    return folder


@pytest.fixture(scope="session")
def mnist_test(data_dir):
    from ddzoo.data import load_split

    return load_split("mnist", "test")


@pytest.fixture(scope="session")
def lenet_checkpoint(data_dir, tmp_path_factory) -> Path:
    """A LeNet trained for one epoch on real MNIST (~98 % test accuracy)."""
    from ddzoo.train import ReferenceRecipe, train_reference

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("ckpt") / "lenet-mnist-ref"
    return train_reference("lenet", "mnist", out, ReferenceRecipe(epochs=1), device="cpu")


@pytest.fixture(scope="session")
def lenet(lenet_checkpoint):
    from ddzoo.package import load_checkpoint

    model, _ = load_checkpoint(lenet_checkpoint)
    return model


@pytest.fixture(scope="session")
def lenet_package(lenet_checkpoint, tmp_path_factory) -> Path:
    """``lenet_checkpoint`` exported to ONNX fp32, fp16 and INT8 (parity on the full MNIST test set)."""
    from ddzoo.export import export_package

    out = tmp_path_factory.mktemp("pkg") / "lenet-mnist-test"
    export_package(lenet_checkpoint, out, formats="onnx,fp16,int8")
    return out


@pytest.fixture(scope="session")
def verified_package(lenet_package, tmp_path_factory):
    """A copy of ``lenet_package`` verified on 200 test images: (folder, verification.json contents)."""
    import shutil

    from ddzoo.verification import VerifySettings, verify_package

    package = tmp_path_factory.mktemp("verified") / "lenet-mnist-test"
    shutil.copytree(lenet_package, package)
    return package, verify_package(package, settings=VerifySettings(limit=200, crosscheck=4, square=0))
