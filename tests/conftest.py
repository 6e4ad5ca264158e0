"""Shared fixtures: every cache in a temp dir, the real datasets, one small trained LeNet; the test tiers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ddzoo import constants

pytest_plugins = ["tests.tiers"]  # the tiers (unit, integration, release) and the order the modules run in

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# `make test` runs two pytest-xdist workers on CI's two cores: one torch thread each (two would oversubscribe)
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
TORCH_THREADS = 1 if XDIST_WORKER else 2
torch.set_num_threads(TORCH_THREADS)
os.environ.setdefault("OMP_NUM_THREADS", str(TORCH_THREADS))  # the same for the CLI runs in subprocesses


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test run, even across pytest-xdist workers (they share the parent of their
    base temp dirs; a file lock makes the others wait, then reuse the folder). Returns the folder."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent if XDIST_WORKER else tmp_path_factory.getbasetemp()
    folder = root / "shared-fixtures" / name
    built = folder.with_name(f"{folder.name}.built")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        if not built.exists():
            build(folder)
            built.touch()
    return folder


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
    """A LeNet trained for one epoch on real MNIST (~98 % test accuracy), its ε_ref stored beside it (bisection on
    the first 200 test images), as the zoo's references hold theirs: verifications take it instead of bisecting
    again (tests of the bisection itself copy the checkpoint without ``eps_ref.json``)."""
    from ddzoo.data import load_split
    from ddzoo.eval.eps_ref import resolve_eps_ref
    from ddzoo.train import ReferenceRecipe, train_reference

    def build(out: Path) -> None:
        train_reference("lenet", "mnist", out, ReferenceRecipe(epochs=1), device="cpu")
        resolve_eps_ref(out, *load_split("mnist", "test").tensors(limit=200), store=True)

    return _built_once(tmp_path_factory, "lenet-mnist-ref", build)


@pytest.fixture(scope="session")
def lenet(lenet_checkpoint):
    from ddzoo.package import load_checkpoint

    model, _ = load_checkpoint(lenet_checkpoint)
    return model


@pytest.fixture(scope="session")
def lenet_package(lenet_checkpoint, tmp_path_factory) -> Path:
    """``lenet_checkpoint`` exported to ONNX fp32, fp16 and INT8 (parity on the full MNIST test set)."""
    from ddzoo.export import export_package

    return _built_once(tmp_path_factory, "lenet-mnist-test",
                       lambda out: export_package(lenet_checkpoint, out, formats="onnx,fp16,int8"))


@pytest.fixture(scope="session")
def verified_package(lenet_package, tmp_path_factory):
    """A copy of ``lenet_package`` verified on 200 test images: (folder, verification.json contents)."""
    import shutil

    from ddzoo.package import read_verification
    from ddzoo.verification import VerifySettings, verify_package

    def build(package: Path) -> None:
        shutil.copytree(lenet_package, package)
        verify_package(package, settings=VerifySettings(limit=200, crosscheck_images=4, square_images=0))

    package = _built_once(tmp_path_factory, "verified/lenet-mnist-test", build)
    return package, read_verification(package)
