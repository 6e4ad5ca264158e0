"""Stronger attacks on a real LeNet and real MNIST: each minimum-norm attack really changes the label, best-of
is never larger than DeepFool's, AutoAttack is at least as strong as FGS, Square fools the ONNX artifact itself,
and Wilson intervals are right."""

from __future__ import annotations

import pytest
import torch

from ddzoo.attacks import attack_copy
from ddzoo.attacks.linf import fgs
from ddzoo.eval.strong import (
    autoattack_accuracy,
    best_of,
    minimum_norm_attack,
    minimum_norms,
    perturbation_stats,
    robust_accuracy_curve,
    square_accuracy,
)


@pytest.fixture(scope="module")
def images(mnist_test):
    return mnist_test.tensors(limit=40)


@pytest.mark.parametrize("name", ["deepfool", "fmn", "ddn"])
def test_each_attack_really_changes_the_label(lenet, images, name):
    x, y = images
    frozen = attack_copy(lenet)
    adversarial = minimum_norm_attack(frozen, x, y, name, steps=50)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    with torch.no_grad():
        fooled = lenet.eval()(adversarial).argmax(1) != y  # judged by the original model, not the copy
    assert fooled.float().mean() > 0.9


def test_best_of_is_never_larger_than_deepfool(lenet, images):
    x, y = images
    norms = minimum_norms(lenet, x, y, ("deepfool", "fmn", "ddn"), steps=50)
    best = best_of(norms)
    assert torch.all(best <= norms["deepfool"]) and torch.all(best <= norms["fmn"])
    stats = perturbation_stats(best, x)
    deepfool = perturbation_stats(norms["deepfool"], x)
    assert stats["success"] == 1.0 and 0 < stats["median_norm"] <= deepfool["median_norm"]
    curve = robust_accuracy_curve(best, [0.0, 0.5, 1.0, 2.0, 100.0])
    assert curve == sorted(curve, reverse=True) and curve[-1] == 0.0  # unbounded: every image falls


def test_autoattack_is_at_least_as_strong_as_fgs(lenet, images):
    x, y = (t[:20] for t in images)  # AutoAttack's four attacks: the module's slowest test on all 40
    eps = 0.1
    record = autoattack_accuracy(lenet, x, y, norm="Linf", eps=eps)
    frozen = attack_copy(lenet)
    with torch.no_grad():
        fgs_accuracy = (frozen(fgs(frozen, x, y, eps)).argmax(1) == y).float().mean().item()
    assert record["accuracy"] <= fgs_accuracy and record["images"] == 20
    low, high = record["ci95"]
    assert low <= record["accuracy"] <= high


def test_square_fools_the_onnx_artifact_itself(lenet_package, images):
    from ddzoo.runtime import open_runner

    x, y = images
    with open_runner(lenet_package / "model.onnx") as runner:
        clean = (runner.predict(x).argmax(1) == y).float().mean().item()
        none = square_accuracy(runner.predict, x, y, norm="Linf", eps=0.0, queries=10)
        strong = square_accuracy(runner.predict, x, y, norm="Linf", eps=0.3, queries=300)
    assert none["accuracy"] == pytest.approx(clean)
    assert strong["accuracy"] < clean - 0.3  # judged by the artifact's own logits


def test_zoo_eval_reports_the_stronger_attacks(lenet_checkpoint, capsys):
    import json

    from ddzoo.cli import main

    assert main(["eval", str(lenet_checkpoint), "--limit", "60", "--attacks", "deepfool,ddn", "--autoattack",
                 "--strong-limit", "20", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    strong = metrics["strong"]
    assert strong["images"] == 20 and set(strong["min_norm"]) == {"deepfool", "ddn"}
    checklist = {c["check"]: c for c in metrics["masking"]["checklist"]}
    assert len(checklist) == 5 and metrics["masking"]["images"] == 20
    for name in ("accuracy falls to ~0 as ε grows", "unbounded attacks reach 100 % success",
                 "iterative at least as strong as single-step"):  # an undefended LeNet masks nothing
        assert checklist[name]["passed"], checklist[name]
    assert strong["best_of"]["median_norm"] <= strong["min_norm"]["deepfool"]["median_norm"]
    curve = strong["l2_curve"]["accuracy"]
    assert curve[0] >= curve[-1] and len(curve) == len(strong["l2_curve"]["eps"])
    linf = metrics["robust"]["Linf 0.3"]  # no declared threat model: MNIST's standard budgets
    assert linf["eps"] == 0.3 and linf["accuracy"] <= 0.1 and linf["images"] == 20  # undefended LeNet at 0.3
    assert linf["label"] == "AutoAttack ℓ∞ 0.3, n = 20" and set(metrics["robust"]) == {"Linf 0.3", "L2 2"}
    entry = metrics["robustbench"]  # what a RobustBench-style row needs
    assert entry["clean"]["images"] == 10000 and entry["architecture"] == "lenet" and entry["parameters"] > 4e5
    assert entry["robust"]["Linf 0.3"]["accuracy"] == linf["accuracy"] and entry["training"]["wall_seconds"] > 0
    assert main(["eval", str(lenet_checkpoint), "--limit", "20", "--attacks", "pgd"]) == 2
    assert "unknown attack" in capsys.readouterr().err


def test_the_masking_checklist_flags_a_masked_model():
    """A record with the signs of gradient masking fails the matching checks, with the numbers in the detail."""
    from ddzoo.eval.masking import masking_checklist

    def record(*, bim_ref, large, square, white, deepfool_norm, fooled=1.0):
        return {"eps_ref": {"fgs": 0.1, "bim": bim_ref},
                "deepfool": {"pixel": {"50": {"fooled": fooled}}},
                "strong": {"best_of": {"success": 1.0, "mean_norm": 1.0},
                           "min_norm": {"deepfool": {"mean_norm": deepfool_norm}}},
                "masking": {"images": 200, "bim_large": {"eps": 0.8, "accuracy": large},
                            "bim_at_eps_ref": {"eps": bim_ref, "accuracy": white},
                            "square_at_eps_ref": {"accuracy": square, "ci95": [square - 0.06, square + 0.06]}}}

    honest = masking_checklist(record(bim_ref=0.08, large=0.0, square=0.55, white=0.5, deepfool_norm=1.1))
    assert all(c["passed"] for c in honest)
    masked = masking_checklist(record(bim_ref=0.2, large=0.3, square=0.2, white=0.5, deepfool_norm=2.0, fooled=0.9))
    assert not any(c["passed"] for c in masked)
    assert "30.0 %" in masked[1]["detail"] and "= 2.00" in masked[4]["detail"]


@pytest.mark.parametrize("declared, attack, large", [
    (None, "BIM", 0.08), ("linf:0.01", "BIM", 0.08), ("linf:8/255", "PGD", 32 / 255), ("l2:0.5", "PGD", 2.0)])
def test_the_large_eps_of_the_checklist_leaves_a_robust_models_ball(lenet, images, declared, attack, large):
    """BIM-50 runs at 8·ε_ref (ℓ∞), or PGD-50 at 4× the model's declared budget in its norm where that is larger
    (ℓ2: always), and the checklist says which."""
    from ddzoo.eval.masking import masking_checklist, masking_measurements
    from ddzoo.eval.robustness import EvalSettings
    from ddzoo.eval.threat import ThreatModel

    x, y = images
    threat = ThreatModel.parse(declared) if declared else None
    measured = masking_measurements(attack_copy(lenet), x[:8], y[:8], {"bim": 0.01}, settings=EvalSettings(),
                                    device=torch.device("cpu"), square_queries=10, declared=threat)
    assert measured["bim_large"]["eps"] == pytest.approx(large) and measured["bim_large"]["attack"] == attack
    assert 0.0 <= measured["bim_large"]["accuracy"] <= 1.0
    if attack == "PGD":
        record = {"eps_ref": {"fgs": 0.02, "bim": 0.01}, "deepfool": {"pixel": {"50": {"fooled": 1.0}}},
                  "strong": {"best_of": {"success": 1.0, "mean_norm": 1.0}, "min_norm": {}}, "masking": measured}
        assert f"PGD-50 {'ℓ2' if threat.norm == 'L2' else 'ℓ∞'} at ε=" in masking_checklist(record)[1]["detail"]


def test_a_second_autoattack_implementation_agrees(lenet, mnist_test):
    """ART's AutoAttack and torchattacks' give the same robust accuracy on the same images (an undefended LeNet
    at l-inf 0.3: none left), and every ART adversarial stays inside the budget (checked inside)."""
    from ddzoo.eval.strong import autoattack_accuracy, autoattack_accuracy_art

    x, y = mnist_test.tensors(limit=20)
    art = autoattack_accuracy_art(lenet, x, y, norm="Linf", eps=0.3)
    torchattacks = autoattack_accuracy(lenet, x, y, norm="Linf", eps=0.3)
    assert art["images"] == 20 and art["accuracy"] <= 0.1 and abs(art["accuracy"] - torchattacks["accuracy"]) <= 0.1
