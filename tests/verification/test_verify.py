"""``zoo verify``: DeepFool against the exported artifact itself, the gate, and stale records."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ddzoo.cli import main
from ddzoo.eval.threat import ThreatModel
from ddzoo.package import WEIGHTS, verification_status
from ddzoo.records import ArtifactRecord
from ddzoo.runtime import open_runner
from ddzoo.verification import VerificationFailedError, require_passing
from ddzoo.verification.attack import artifact_deepfool


@pytest.fixture
def verified(verified_package):
    return verified_package


def test_fp32_onnx_rho_equals_the_checkpoint_within_one_percent(verified):
    _, result = verified
    record, baseline = result["records"]["model.onnx"], result["records"][WEIGHTS]
    assert record["top1_agreement"] == 1.0 and record["clean_accuracy"] == baseline["clean_accuracy"]
    for iterations in ("5", "50"):
        ratio = record["deepfool"][iterations]["rho2"] / baseline["deepfool"][iterations]["rho2"]
        assert abs(ratio - 1) < 0.01
    assert record["gate"]["passed"] and record["deepfool"]["50"]["fooled"] == 1.0
    assert record["crosscheck"]["relative_difference"] < 0.1  # finite differences see the same boundary
    assert record["fgs"]["eps"] == baseline["fgs"]["eps"] and len(record["bim"]["accuracy"]) == 3


def test_records_are_tied_to_bytes_and_runtime(verified):
    package, result = verified
    for name, record in result["records"].items():
        assert record["runtime"]["backend"] == ("torch" if name == WEIGHTS else "onnxruntime")
        assert len(record["sha256"]) == 64 and record["images"] == 200
    assert set(verification_status(package).values()) == {"pass"}  # fp32, fp16 and INT8 of the test LeNet
    stored = json.loads((package / "verification.json").read_text())
    assert json.dumps(stored, sort_keys=True) == json.dumps(result, sort_keys=True)


def test_changed_bytes_make_the_record_stale(verified, tmp_path):
    import onnx

    package, _ = verified
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    model = onnx.load(str(copy / "model.onnx"))
    model.doc_string = "edited after verification"
    onnx.save(model, str(copy / "model.onnx"))
    assert verification_status(copy)["model.onnx"] == "stale"
    with pytest.raises(VerificationFailedError, match="model.onnx: stale"):
        require_passing(copy, ["model.onnx"])


def _damage(path, how: str) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim < 2:
            continue
        if how == "noise":
            w = w + rng.normal(0, 0.5 * w.std(), w.shape).astype(w.dtype)
        else:  # a deliberately coarse quantisation: 3 levels per tensor
            step = np.abs(w).max() / 1
            w = (np.round(w / step) * step).astype(w.dtype)
        init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(path))


@pytest.mark.parametrize("how", ["noise", "coarse"])
def test_damaged_artifact_fails_the_gate(lenet_package, tmp_path, how, capsys):
    package = tmp_path / "pkg"
    shutil.copytree(lenet_package, package)
    _damage(package / "model.onnx", how)
    code = main(["verify", str(package), "--artifact", "model.onnx", "--limit", "100", "--square", "0",
                 "--json"])
    err = capsys.readouterr().err
    assert code == 3 and "gate failed for model.onnx" in err  # 3: a failed gate
    assert verification_status(package)["model.onnx"] == "fail"
    with pytest.raises(VerificationFailedError):
        require_passing(package, ["model.onnx"])


def test_artifact_attack_lands_on_the_artifacts_boundary(lenet_package, mnist_test):
    x, _ = mnist_test.tensors(limit=64)
    with open_runner(lenet_package, backend="torch") as ckpt, open_runner(lenet_package / "model.int8.onnx") as q:
        result = artifact_deepfool(ckpt.model, q, x, max_iter=50, num_candidates=10)
        start = q.predict(x).argmax(1)
        assert torch.equal(result.start_labels, start)
        fooled = result.fooled
        assert fooled.float().mean() > 0.9
        adversarial = q.predict(x[fooled] + result.perturbation[fooled]).argmax(1)
        assert (adversarial != start[fooled]).all()  # every reported r fools the INT8 artifact itself
        shorter = q.predict(x[fooled] + 0.97 * result.perturbation[fooled]).argmax(1)
        assert (shorter == start[fooled]).float().mean() > 0.9  # and sits at its boundary


def test_cli_verify_table_and_plot(verified, tmp_path, capsys):
    package = tmp_path / "pkg"
    shutil.copytree(verified[0], package)
    plot = tmp_path / "verify.png"
    assert main(["verify", str(package), "--artifact", "model.fp16.onnx", "--limit", "30", "--square", "0",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "model.fp16.onnx" in out and "pass" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_artifact_is_refused(verified, capsys):
    package, _ = verified
    assert main(["verify", str(package), "--artifact", "model.fp64.onnx"]) == 2  # usage
    assert "no artifact ['model.fp64.onnx']" in capsys.readouterr().err


def test_accuracy_is_stated_with_its_interval_and_the_drop_is_paired(verified):
    from ddzoo.stats import PairedDrop
    from ddzoo.verification import table_row

    _, result = verified
    record = result["records"]["model.onnx"]
    low, high = record["clean_accuracy_ci95"]
    assert low <= record["clean_accuracy"] <= high and record["images"] == 200
    assert record["accuracy_drop"]["images"] == 200 and record["accuracy_drop"]["drop"] == pytest.approx(
        result["records"][WEIGHTS]["clean_accuracy"] - record["clean_accuracy"], abs=1e-9)
    assert "(n=200)" in table_row(ArtifactRecord.from_json(record))["accuracy"]
    base = torch.tensor([True] * 90 + [False] * 10)
    same = PairedDrop.of(base, base.clone())
    assert same.drop == 0 and same.ci95 == (0.0, 0.0)  # identical predictions: no uncertainty at all
    worse = base.clone()
    worse[:5] = False  # 5 of 100 lost
    paired = PairedDrop.of(base, worse)
    assert paired.drop == pytest.approx(0.05) and paired.ci95[0] > 0 and paired.lost == 5


def test_each_record_keeps_which_images_its_artifact_got_right(verified, mnist_test):
    """The per-image flags are the runner's own predictions, and they give the record's accuracy and paired drop."""
    package, result = verified
    records = {name: ArtifactRecord.from_json(record) for name, record in result["records"].items()}
    x, y = mnist_test.tensors(limit=200)
    for name, record in records.items():
        target = (package, "torch") if name == WEIGHTS else (package / name, "auto")
        with open_runner(target[0], backend=target[1]) as runner:
            assert torch.equal(record.correct_flags(), runner.predict(x).argmax(1) == y), name
    baseline = records[WEIGHTS].correct_flags()
    for name, record in records.items():
        if name != WEIGHTS:
            drop = record.accuracy_drop
            correct = record.correct_flags()
            lost, gained = int((baseline & ~correct).sum()), int((correct & ~baseline).sum())
            assert (drop.lost, drop.gained) == (lost, gained), name


def test_square_attack_runs_on_every_artifact_int8_included(lenet_package, tmp_path):
    """The query-only cross-check reads only the artifact's logits, so it works on INT8 too."""
    from ddzoo.verification import VerifySettings, table_row, verify_package

    package = tmp_path / "pkg"
    shutil.copytree(lenet_package, package)
    result = verify_package(package, settings=VerifySettings(limit=40, square_images=40, square_queries=200,
                                                             iterations=(5,)))
    records = result["records"]
    for name in ("model.safetensors", "model.onnx", "model.int8.onnx"):
        square = records[name]["square"]
        assert square["images"] == 40 and square["eps"] == records[name]["eps_ref"]["fgs"]
        assert square["accuracy"] < records[name]["clean_accuracy"]  # it does fool the artifact itself
        assert "n=40" in table_row(ArtifactRecord.from_json(records[name]))["Square acc. at ε_ref"]
        if name != "model.safetensors":  # paired with the checkpoint's, image by image
            assert records[name]["square"]["robust_drop"]["images"] == 40


def test_the_card_lists_square_accuracy_in_its_model_index(lenet_package, tmp_path):
    from ddzoo.package import read_config, read_verification
    from ddzoo.verification import VerifySettings, verify_package
    from ddzoo.zoo.card import make_card

    package = tmp_path / "pkg"
    shutil.copytree(lenet_package, package)
    verify_package(package, artifacts=["model.onnx"], settings=VerifySettings(limit=20, square_images=20,
                                                                              square_queries=50, iterations=(5,)))
    card = make_card(package, "lenet-test", read_config(package), read_verification(package), [])
    eps = read_verification(package)["records"]["model.onnx"]["square"]["eps"]
    label = f"Square ℓ∞ {ThreatModel('Linf', eps).eps_text}, n = 20 (model.onnx)"  # norm, ε, attack and n
    assert "robust_accuracy" in card and label in card


def test_strong_attacks_on_the_checkpoint_reach_the_record_card_and_listing(lenet_package, tmp_path):
    """--strong: best-of and AutoAttack on the checkpoint into verification.json, the card's model-index and
    `zoo list`; verifying again without --strong keeps the record measured on the same weights."""
    from ddzoo.package import read_config, read_verification
    from ddzoo.verification import VerifySettings, verify_package
    from ddzoo.zoo import package_facts
    from ddzoo.zoo.card import make_card

    package = tmp_path / "pkg"
    shutil.copytree(lenet_package, package)
    quick = {"limit": 30, "square_images": 0, "iterations": (5,)}
    verify_package(package, artifacts=["model.onnx"], settings=VerifySettings(**quick, strong_images=30))
    strong = read_verification(package)["records"]["model.safetensors"]["strong"]
    assert strong["images"] == 30 and strong["best_of"]["success"] == 1.0
    assert strong["best_of"]["mean_norm"] <= strong["min_norm"]["deepfool"]["mean_norm"] + 1e-6
    linf = strong["autoattack"]["Linf"]
    assert linf["eps"] == 0.3 and linf["accuracy"] < 0.5  # an undefended LeNet at MNIST's l-inf 0.3
    card = make_card(package, "lenet-test", read_config(package), read_verification(package), [])
    assert "AutoAttack ℓ∞ 0.3, n = 30 (model.safetensors)" in card and "best-of minimum-norm" in card
    assert package_facts(package)["autoattack_label"] == "AutoAttack ℓ∞ 0.3, n = 30"
    assert "Stronger attacks (the checkpoint, white-box)" in card
    assert package_facts(package)["autoattack"] == linf["accuracy"]
    verify_package(package, artifacts=["model.onnx"], settings=VerifySettings(**quick))  # no --strong
    assert read_verification(package)["records"]["model.safetensors"]["strong"] == strong


def test_the_pair_plot_draws_reference_and_deep_defense_together(tmp_path):
    from ddzoo.verification.plot import plot_l2_budget_pairs

    def evaluation(name: str, accuracy: list[float]) -> dict:
        return {"checkpoint": f"runs/{name}", "dataset": "mnist", "strong": {
            "best_of": {"rho2": 0.2}, "l2_curve": {"eps": [0.0, 1.0, 2.0], "accuracy": accuracy},
            "autoattack": {"L2": {"eps": 2.0, "accuracy": 0.5, "ci95": [0.4, 0.6], "images": 100}}}}

    path = plot_l2_budget_pairs([evaluation("ref", [0.99, 0.8, 0.1]), evaluation("dd", [0.99, 0.9, 0.5])],
                                tmp_path / "pairs.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def _flags(n: int, lost: int, gained: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image correctness of a checkpoint and an artifact: ``lost`` right only before, ``gained`` after."""
    base = torch.tensor([True] * (n // 2) + [False] * (n - n // 2))
    after = base.clone()
    after[:lost] = False
    after[n // 2 : n // 2 + gained] = True
    return base, after


def test_the_gate_knows_its_sample():
    """The same 0.1-point drop fails on 1,000 images (its interval reaches past 0.5 pt) and passes on 10,000;
    a query-only attack that finds the artifact clearly weaker than its checkpoint fails it too."""
    from ddzoo.records import GateResult
    from ddzoo.stats import Accuracy, PairedDrop
    from ddzoo.verification import Gate

    gate = Gate()

    def record(accuracy: float, drop: PairedDrop | None = None, square: dict | None = None) -> ArtifactRecord:
        return ArtifactRecord("model.onnx", "0" * 64, Accuracy(accuracy, (0.0, 1.0), 1000), {}, GateResult(False),
                              rho2_ratio=1.0, accuracy_drop=drop, square=square)

    def paired(n: int, lost: int, gained: int, square: dict | None = None) -> ArtifactRecord:
        return record(0.5 - (lost - gained) / n, PairedDrop.of(*_flags(n, lost, gained)), square)

    baseline = record(0.5)
    small = gate.judge(paired(1000, 6, 5), baseline)
    assert not small.passed and "verify on more" in small.reasons[0] and "n=1000" in small.reasons[0]
    assert gate.judge(paired(10_000, 60, 50), baseline).passed
    assert gate.judge(paired(1000, 0, 0), baseline).passed  # identical predictions: exact at any n
    assert not gate.judge(paired(10_000, 150, 50), baseline).passed  # a real 1-point drop
    assert not gate.judge(record(0.49), baseline).passed  # no paired record: the plain difference
    weaker = {"robust_drop": PairedDrop.of(*_flags(100, 20, 0)).to_json()}
    noisy = {"robust_drop": PairedDrop.of(*_flags(100, 3, 1)).to_json()}
    verdict = gate.judge(paired(1000, 0, 0, weaker), baseline)
    assert not verdict.passed and "Square robust accuracy 20.0 pt below" in verdict.reasons[0]
    assert gate.judge(paired(1000, 0, 0, noisy), baseline).passed
