"""Robustness evaluation: ε_ref bisection, the normalised-space shortcut, and `zoo eval` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ddzoo.attacks import attack_copy
from ddzoo.cli import main
from ddzoo.eval.robustness import EvalSettings, deepfool_norms, find_eps_ref, linf_accuracy
from ddzoo.records import DeepFoolSummary

CPU = torch.device("cpu")


def test_eps_ref_is_where_accuracy_is_half(lenet, mnist_test):
    x, y = mnist_test.tensors(limit=400)
    settings = EvalSettings()
    eps = find_eps_ref(attack_copy(lenet), x, y, "fgs", settings=settings, device=CPU)
    assert 0 < eps < 1
    assert linf_accuracy(lenet, x, y, "fgs", eps, settings=settings, device=CPU) == pytest.approx(0.5, abs=0.0051)


@pytest.mark.parametrize("attack", ["fgs", "bim"])
def test_eps_ref_from_a_subset_guess_meets_the_same_rule(lenet, mnist_test, attack):
    """Large sets start from a bisection on a subset and finish by regula falsi on all images: same rule,
    fewer passes over all the images."""
    x, y = mnist_test.tensors(limit=600)
    settings = EvalSettings(batch_size=600)
    frozen = attack_copy(lenet)
    passes = []
    counting = lambda model, xx, *args, **kwargs: passes.append(len(xx)) or linf_accuracy(model, xx, *args, **kwargs)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ddzoo.eval.robustness.linf_accuracy", counting)
        eps = find_eps_ref(frozen, x, y, attack, settings=settings, device=CPU, subset=150)
    assert linf_accuracy(frozen, x, y, attack, eps, settings=settings, device=CPU) == pytest.approx(0.5, abs=0.0051)
    assert passes.count(150) >= 3 and passes.count(600) <= 6


def test_normalised_space_equals_attacking_the_body(lenet, mnist_test):
    """With one std, ρ₂ in (x - μ)/σ space from the pixel-space run equals running DeepFool on model.net."""
    x, _ = mnist_test.tensors(limit=200)
    settings = EvalSettings(batch_size=200)
    frozen = attack_copy(lenet)
    norms, fooled, steps = deepfool_norms(frozen, x, budgets=(50,), settings=settings, device=CPU)[50]
    derived = norms / lenet.normalize.std.flatten()[0]
    z = lenet.normalize(x).detach()
    direct, _, _ = deepfool_norms(attack_copy(lenet.net), z, budgets=(50,), settings=settings, device=CPU)[50]
    torch.testing.assert_close(derived, direct, rtol=2e-3, atol=1e-5)
    stats = DeepFoolSummary.measure(norms, x.flatten(1).norm(dim=1), fooled, steps).to_json()
    assert set(stats) == {"rho2", "rho2_fooled", "fooled", "mean_iterations"}


def test_zoo_eval_json_and_stored_eps_ref(lenet_checkpoint, tmp_path, capsys):
    # A private copy: other tests' `zoo eval` may have stored an eps_ref.json (from other images) beside the shared one.
    lenet_checkpoint = Path(shutil.copytree(lenet_checkpoint, tmp_path / "ckpt",
                                            ignore=shutil.ignore_patterns("eps_ref.json")))
    config_before = (lenet_checkpoint / "config.json").read_bytes()
    assert main(["eval", str(lenet_checkpoint), "--dataset", "mnist", "--limit", "300", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == 300 and metrics["clean_accuracy"] > 0.9
    low, high = metrics["clean_accuracy_ci95"]
    assert low < metrics["clean_accuracy"] < high
    for space in ("pixel", "normalized"):
        for iterations in ("5", "50"):
            stats = metrics["deepfool"][space][iterations]
            assert 0.02 < stats["rho2"] < 1 and 0 <= stats["fooled"] <= 1
    # More iterations can only finish more samples.
    assert metrics["deepfool"]["pixel"]["50"]["fooled"] >= metrics["deepfool"]["pixel"]["5"]["fooled"]
    stored = json.loads((lenet_checkpoint / "eps_ref.json").read_text())  # beside the checkpoint, not in it
    assert metrics["eps_ref"] == {"fgs": stored["fgs"], "bim": stored["bim"]}
    assert metrics["fgs"]["eps"] == pytest.approx([f * stored["fgs"] for f in (0.2, 0.5, 1.0)])
    fgs_acc = metrics["fgs"]["accuracy"]
    assert fgs_acc[0] >= fgs_acc[1] >= fgs_acc[2] and fgs_acc[2] == pytest.approx(0.5, abs=0.0051)
    box = metrics["deepfool"]["box_constrained"]
    assert box["max_iter"] == 50 and box["rho2_fooled"] >= metrics["deepfool"]["pixel"]["50"]["rho2"] * 0.9
    # A second run reuses the stored ε_ref; the checkpoint's config is never edited.
    assert main(["eval", str(lenet_checkpoint), "--limit", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["eps_ref"] == metrics["eps_ref"]
    assert (lenet_checkpoint / "config.json").read_bytes() == config_before


def test_eval_refuses_a_dataset_of_another_shape(lenet_checkpoint, capsys):
    assert main(["eval", str(lenet_checkpoint), "--dataset", "cifar10", "--limit", "10"]) == 2
    assert "pass --dataset mnist" in capsys.readouterr().err
