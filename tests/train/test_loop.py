"""Resumable training (same weights as an uninterrupted run) and the distributed path (gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from ddzoo.cli import main
from ddzoo.errors import CheckpointError, TrainingDivergedError
from ddzoo.train import DeepDefenseRecipe, ReferenceRecipe, finetune_deep_defense, train_reference


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_resumed_reference_run_equals_uninterrupted(data_dir, tmp_path):
    recipe = ReferenceRecipe(epochs=3, batch_size=100)
    whole = train_reference("mlp", "mnist", tmp_path / "whole", recipe, device="cpu", train_limit=600)
    split = tmp_path / "split"
    assert train_reference("mlp", "mnist", split, recipe, device="cpu", train_limit=600, stop_after_epochs=1) is None
    assert not (split / "config.json").exists() and (split / "training_state.safetensors").exists()
    assert train_reference("mlp", "mnist", split, recipe, device="cpu", train_limit=600, stop_after_epochs=1,
                           resume=True) is None
    train_reference("mlp", "mnist", split, recipe, device="cpu", train_limit=600, resume=True)
    assert_same(weights(whole), weights(split))


def test_resumed_deep_defense_run_equals_uninterrupted(lenet_checkpoint, tmp_path):
    recipe = DeepDefenseRecipe(epochs=2, batch_size=50)
    whole = finetune_deep_defense(lenet_checkpoint, tmp_path / "whole", recipe, device="cpu", train_limit=100)
    split = tmp_path / "split"
    finetune_deep_defense(lenet_checkpoint, split, recipe, device="cpu", train_limit=100, stop_after_epochs=1)
    finetune_deep_defense(lenet_checkpoint, split, recipe, device="cpu", train_limit=100, resume=True)
    assert_same(weights(whole), weights(split))
    config = json.loads((split / "config.json").read_text())
    assert config["recipe"]["name"] == "deep-defense" and config["recipe"]["init"] == str(lenet_checkpoint)
    assert config["recipe"]["lam"] == 15.0 and config["recipe"]["c"] == 25.0 and config["recipe"]["d"] == 5.0


def test_resume_refuses_other_settings_and_overwrite(data_dir, tmp_path):
    out = tmp_path / "run"
    train_reference("mlp", "mnist", out, ReferenceRecipe(epochs=2), device="cpu", train_limit=200, stop_after_epochs=1)
    with pytest.raises(CheckpointError, match="other settings"):
        train_reference("mlp", "mnist", out, ReferenceRecipe(epochs=2, lr=0.5), device="cpu", train_limit=200,
                        resume=True)
    with pytest.raises(CheckpointError, match="unfinished run; pass --resume"):
        train_reference("mlp", "mnist", out, ReferenceRecipe(epochs=2), device="cpu", train_limit=200)


def test_deep_defense_cli_needs_init(capsys, tmp_path):
    assert main(["train", "--recipe", "deep-defense", "--out", str(tmp_path / "x")]) == 2
    assert "pass --init CHECKPOINT" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", [["--recipe", "deep-defense"],
                                    ["--recipe", "adversarial", "--adv-attack", "fgs", "--adv-weight", "0.5"]])
def test_two_process_gloo_run_equals_one_process(recipe, lenet_checkpoint, tmp_path, data_dir):
    """torchrun, 2 CPU processes (gloo), per-rank batch 25 == one process with batch 50 (adversarial training
    with FGS: PGD's random start is drawn per batch, so a split batch draws other starts)."""
    args = ["train", *recipe, "--init", str(lenet_checkpoint), "--epochs", "1",
            "--batch-size", "50", "--train-limit", "100", "--device", "cpu"]
    env = {**os.environ, "ZOO_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1", "ZOO_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "ddzoo.cli", *args, "--out", str(tmp_path / "ddp")], env=env, check=True,
                   capture_output=True, timeout=600)
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["metrics"]["world_size"] == 2
    assert_same(weights(tmp_path / "ddp"), weights(tmp_path / "single"), atol=2e-5)



def test_diverging_run_stops_before_nan_reaches_the_weights_or_the_state(data_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match="diverged in epoch 1.*nothing was saved. Lower --lr"):
        train_reference("mlp", "mnist", out, ReferenceRecipe(epochs=2, lr=1e12), device="cpu", train_limit=300)
    assert not (out / "config.json").exists() and not (out / "training_state.safetensors").exists()


def test_a_deep_defense_fine_tune_of_a_robust_model_declares_its_threat_models(lenet_checkpoint, tmp_path):
    import shutil

    robust = tmp_path / "robust"
    shutil.copytree(lenet_checkpoint, robust)
    config = json.loads((robust / "config.json").read_text())
    (robust / "config.json").write_text(json.dumps({**config, "threat_models": [{"norm": "Linf", "eps": 0.1}]}))
    out = finetune_deep_defense(robust, tmp_path / "dd", DeepDefenseRecipe(epochs=1, batch_size=50), device="cpu",
                                train_limit=50)
    assert json.loads((out / "config.json").read_text())["threat_models"] == [{"norm": "Linf", "eps": 0.1}]
    plain = finetune_deep_defense(lenet_checkpoint, tmp_path / "plain", DeepDefenseRecipe(epochs=1, batch_size=50),
                                  device="cpu", train_limit=50)
    assert "threat_models" not in json.loads((plain / "config.json").read_text())
