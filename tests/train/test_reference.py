"""Reference training and checkpoints: safetensors + config.json, deterministic on CPU, loadable."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from ddzoo.cli import main
from ddzoo.errors import CheckpointError
from ddzoo.models.inference import accuracy
from ddzoo.train import ReferenceRecipe, load_checkpoint, read_config, train_reference


def test_checkpoint_records_everything(lenet_checkpoint):
    config = read_config(lenet_checkpoint)
    assert config["arch"] == "lenet" and config["dataset"] == "mnist" and config["input_shape"] == [1, 28, 28]
    assert config["recipe"]["name"] == "reference" and config["recipe"]["lr"] == 0.01
    assert config["normalization"]["mean"] == pytest.approx([0.1307])
    assert {"ddzoo", "torch", "numpy", "python"} <= set(config["versions"])
    assert config["metrics"]["test_accuracy"] > 0.95
    assert sorted(p.name for p in lenet_checkpoint.iterdir()) == [
        "config.json", "model.safetensors", "training_state.safetensors"]


def test_loaded_model_reproduces_the_recorded_accuracy(lenet_checkpoint, mnist_test):
    model, config = load_checkpoint(lenet_checkpoint)
    # Same procedure as the trainer (batches of 1,000); one image of slack for thread-level float noise.
    assert accuracy(model, *mnist_test.tensors()) == pytest.approx(config["metrics"]["test_accuracy"], abs=1e-4)


def test_training_is_deterministic_on_cpu(data_dir, tmp_path):
    recipe = ReferenceRecipe(epochs=1, batch_size=100)
    runs = [train_reference("mlp", "mnist", tmp_path / n, recipe, device="cpu", train_limit=1_000) for n in "ab"]
    a, b = (load_file(str(run / "model.safetensors")) for run in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_damaged_checkpoints_are_refused(lenet_checkpoint, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path)
    config = json.loads((lenet_checkpoint / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot load weights"):
        load_checkpoint(tmp_path)


def test_zoo_train_cli(data_dir, tmp_path, capsys):
    out = tmp_path / "ckpt"
    code = main(["train", "--model", "mlp", "--dataset", "fashion-mnist", "--epochs", "1", "--train-limit", "2000",
                 "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checkpoint"] == str(out) and 0.5 < summary["test_accuracy"] <= 1
    assert read_config(out)["dataset"] == "fashion-mnist"
