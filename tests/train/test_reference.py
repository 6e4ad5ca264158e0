"""Reference training and checkpoints: safetensors + config.json, deterministic on CPU, loadable."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
from safetensors.torch import load_file

from ddzoo.cli import main
from ddzoo.data import Split, load_split
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.models import create_model, memory_format_for
from ddzoo.models.inference import accuracy
from ddzoo.package import load_checkpoint, read_config
from ddzoo.train import ReferenceRecipe, train_reference
from ddzoo.train.loop import fit


def test_checkpoint_records_everything(lenet_checkpoint):
    config = read_config(lenet_checkpoint)
    assert config["arch"] == "lenet" and config["dataset"] == "mnist" and config["input_shape"] == [1, 28, 28]
    assert config["recipe"]["name"] == "reference" and config["recipe"]["lr"] == 0.01
    assert config["normalization"]["mean"] == pytest.approx([0.1307])
    assert {"ddzoo", "torch", "numpy", "python"} <= set(config["versions"])
    assert config["metrics"]["test_accuracy"] > 0.95
    assert "CPUs" in config["metrics"]["machine"]  # the processor the run used, for the card
    files = {p.name for p in lenet_checkpoint.iterdir()}  # eps_ref.json: stored by the fixture, as `zoo eval` does
    assert files == {"config.json", "model.safetensors", "training_state.safetensors", "eps_ref.json"}


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


def test_warmup_then_cosine_schedule():
    recipe = ReferenceRecipe(epochs=10, lr=0.1, warmup_epochs=2)
    total = 1000  # 100 steps an epoch: warm-up is the first 200
    lrs = [recipe.lr_at(step, total) for step in range(total)]
    assert lrs[0] == pytest.approx(0.1 / 200) and lrs[99] == pytest.approx(0.05)
    assert all(a < b for a, b in zip(lrs[:199], lrs[1:200], strict=True))  # rises linearly ...
    assert lrs[200] == pytest.approx(0.1) and max(lrs) == pytest.approx(0.1)  # ... to the peak ...
    assert lrs[600] == pytest.approx(0.05)  # ... then cosine
    assert all(a >= b for a, b in zip(lrs[200:-1], lrs[201:], strict=True))
    assert lrs[-1] < 1e-5
    assert ReferenceRecipe(epochs=4, lr=0.1).lr_at(0, 400) == 0.1  # no warm-up: cosine from the first step
    for bad in ({"warmup_epochs": 10}, {"warmup_epochs": -1}, {"label_smoothing": 1.0}):
        with pytest.raises(InvalidArgumentError):
            ReferenceRecipe(epochs=10, **bad).validate()


def test_label_smoothing_reaches_the_loss():
    logits, y = torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([0])
    plain, _ = ReferenceRecipe().objective(lambda x: x, None, logits, y)
    smoothed, _ = ReferenceRecipe(label_smoothing=0.3).objective(lambda x: x, None, logits, y)
    assert smoothed.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.3).item()) and smoothed > plain


def test_channels_last_training_saves_plain_weights_and_records_a_holdout_curve(data_dir, tmp_path):
    """resnet20 trains channels-last on CPUs; its checkpoint is ordinary, and held-out images are scored."""
    assert memory_format_for("resnet20", torch.device("cpu")) == torch.channels_last
    assert memory_format_for("lenet", torch.device("cpu")) == torch.contiguous_format
    train = load_split("cifar10", "test")
    train, holdout = (Split(train.info, "test", train.images[a:b], train.labels[a:b])
                      for a, b in ((0, 256), (256, 512)))
    model = create_model("resnet20", "cifar10", seed=0)
    recipe = ReferenceRecipe(epochs=2, lr=0.05, batch_size=64)
    out = fit(model, train, recipe.objective, out=tmp_path / "r", recipe=asdict(recipe), lr_at=recipe.lr_at,
              test=holdout, config={"dataset": "cifar10"}, device=torch.device("cpu"), holdout=holdout)
    curve = read_config(out)["metrics"]["holdout_curve"]
    assert len(curve) == 2 and all(0.0 <= a <= 1.0 for a in curve)
    state = load_file(str(out / "model.safetensors"))
    assert all(t.is_contiguous() for t in state.values())
    loaded, _ = load_checkpoint(out)
    assert accuracy(loaded, *holdout.tensors()) == pytest.approx(curve[-1], abs=1 / 256)
