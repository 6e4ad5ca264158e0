"""Robust accuracy per declared threat model on the deployed bytes: threat models, stored AutoAttack
adversarials (resume, reuse, refusal of crafted ones), their replay on artifacts, and the gate."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ddzoo import constants
from ddzoo.data import load_split
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.eval.autoattack import autoattack
from ddzoo.eval.threat import ThreatModel, declared_threat_models
from ddzoo.package import WEIGHTS
from ddzoo.records import ArtifactRecord
from ddzoo.stats import PairedDrop
from ddzoo.verification.gate import Gate
from ddzoo.verification.robust import REPLAYED, robust_reasons


def test_threat_models_are_declared_by_config_or_by_a_standard_budget_recipe():
    linf = {"dataset": "cifar10", "recipe": {"name": "adversarial", "norm": "linf", "eps": 0.03137254902}}
    assert declared_threat_models(linf) == [ThreatModel("Linf", 8 / 255)]
    assert declared_threat_models({**linf, "recipe": {**linf["recipe"], "eps": 0.5 / 255}}) == []  # not standard
    assert declared_threat_models({"dataset": "cifar10", "recipe": {"name": "reference"}}) == []
    assert declared_threat_models({"threat_models": [{"norm": "L2", "eps": 0.5}]}) == [ThreatModel("L2", 0.5)]
    with pytest.raises(InvalidArgumentError, match="threat_models"):
        declared_threat_models({"threat_models": "Linf"})
    with pytest.raises(InvalidArgumentError, match="at most 1"):
        ThreatModel("Linf", 2.0)
    assert ThreatModel.parse("linf:8/255").label("AutoAttack", 1000) == "AutoAttack ℓ∞ 8/255, n = 1,000"
    assert ThreatModel.parse("L2:0.5").key == "L2 0.5"
    with pytest.raises(InvalidArgumentError, match="NORM:EPS"):
        ThreatModel.parse("l3:0.5")


def test_stored_adversarials_resume_are_reused_and_crafted_ones_refused(lenet, mnist_test, tmp_path):
    # ℓ∞ 0.3 breaks the test LeNet on (almost) every image within APGD: AutoAttack's 5,000-query Square, slow
    # on a CPU, has (almost) nothing left to attack. The robust-and-not mix is the verify test's (below).
    x, y = mnist_test.tensors(limit=20)
    threat = ThreatModel("Linf", 0.3)
    first = autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10)
    files = sorted(tmp_path.glob("*.safetensors"))
    assert len(files) == 2 and first.reused_batches == 0 and first.robust.float().mean() < 0.5
    delta = (first.adversarials - x).flatten(1).abs().amax(1)
    assert float(delta.max()) <= 0.3 + 1e-6 and not bool((delta[first.robust] > 0).any())  # robust: x itself
    again = autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10)
    assert again.reused_batches == 2 and again.seconds == 0
    assert torch.equal(again.adversarials, first.adversarials) and torch.equal(again.robust, first.robust)
    replayed = autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10, replay_only=True)
    assert torch.equal(replayed.robust, first.robust)
    with pytest.raises(CheckpointError, match="no stored AutoAttack batch .* images 0-9"):
        autoattack(lenet, x[:10], y[:10], ThreatModel("Linf", 0.25), store=tmp_path, batch_size=10, replay_only=True)
    other = autoattack(lenet, x[:10], y[:10], ThreatModel("Linf", 0.25), store=tmp_path, batch_size=10)
    assert other.reused_batches == 0  # another budget: not the stored batch
    with safe_open(str(files[0]), framework="pt") as handle:
        meta = handle.metadata()
    # A forgery inside the budget: no row changed, so every image "resisted" (the batch's metadata can be
    # computed from public weights and images, its MAC cannot): attacked again, or reused only with trust.
    empty = {"index": torch.zeros(0, dtype=torch.long), "adversarial": torch.zeros(0, *x.shape[1:])}
    save_file(empty, str(files[0]), metadata=meta)
    trusted = autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10, trust=True)
    assert trusted.unverified_batches == 1 and trusted.record()["batches"]["reused_unverified"] == 1
    assert int(trusted.robust.sum()) >= int(first.robust.sum()) + 8  # what a forgery buys: ~10 images "robust"
    redone = autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10)
    assert redone.reused_batches == 1 and redone.unverified_batches == 0 and redone.seconds > 0
    assert torch.equal(redone.robust, first.robust)  # attacked again, and the file rewritten with its MAC
    assert autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10).reused_batches == 2
    rows = load_file(str(files[0]))
    rows["adversarial"] = (rows["adversarial"] + 0.3).clamp(0, 1)  # outside the budget
    save_file(rows, str(files[0]), metadata=meta)
    with pytest.raises(CheckpointError, match="delete it"):
        autoattack(lenet, x, y, threat, store=tmp_path, batch_size=10)


def test_the_robust_figures_square_runs_are_saved_as_they_end(lenet_package, mnist_test, tmp_path, monkeypatch):
    """``zoo verify --state``: each runner's Square run for a threat model is saved as it ends, and a run that
    goes on takes it from there (the same figures, Square not run again)."""
    from ddzoo.eval import strong
    from ddzoo.runtime import open_runner
    from ddzoo.verification.progress import SavedRuns
    from ddzoo.verification.robust import robust_records

    x, y = mnist_test.tensors(limit=10)
    square, calls = strong.square_robust, []
    monkeypatch.setattr(strong, "square_robust", lambda *a, **k: calls.append(1) or square(*a, **k))
    with open_runner(lenet_package, backend="torch") as checkpoint, open_runner(lenet_package / "model.onnx") as fp32:
        def figures():
            return robust_records(checkpoint.model, {WEIGHTS: checkpoint, "model.onnx": fp32}, x, y,
                                  [ThreatModel("Linf", 0.3)], images=10, square=True, square_queries=50, batch_size=10,
                                  baseline=WEIGHTS, store=tmp_path / "adversarials",
                                  saved=SavedRuns(tmp_path / "state", "run"))
        first = figures()
        assert len(calls) == 2 and len(list((tmp_path / "state").iterdir())) == 2
        again = figures()  # AutoAttack's batches reused from the store, Square's runs from the saved ones
        assert len(calls) == 2
        for name, by_threat in first.items():
            figure = by_threat["Linf 0.3"]
            assert again[name]["Linf 0.3"]["square"] == figure["square"] and 0 <= figure["square"]["accuracy"] < 1
            assert again[name]["Linf 0.3"]["combined"] == figure["combined"]


def test_a_significant_robust_drop_fails_the_gate_and_a_few_flips_do_not():
    def figure(lost: int, gained: int = 0) -> dict:
        before = torch.arange(400) >= gained  # the first `gained` images: wrong before, right after
        after = (torch.arange(400) < gained) | (torch.arange(400) >= gained + lost)
        drop = PairedDrop.of(before, after).to_json()
        return {"label": "AutoAttack, replayed ℓ∞ 8/255, n = 400", "robust_drop": drop}

    reasons = robust_reasons({"Linf 8/255": {**figure(100), "square": figure(0)}}, 0.0)
    assert len(reasons) == 1 and "25.0 pt below" in reasons[0] and "100 images lost, 0 gained" in reasons[0]
    assert robust_reasons({"Linf 8/255": figure(100)}, 0.3) == []  # within a looser bound
    assert robust_reasons({"Linf 8/255": figure(4)}, 0.0) == []  # 4 vs 0: exact p = 0.0625, not significant
    assert robust_reasons({"Linf 8/255": figure(6)}, 0.0) != []  # 6 vs 0: p = 0.016
    assert robust_reasons({"Linf 8/255": figure(9, 3)}, 0.0) == []  # p = 0.073
    assert PairedDrop.of(torch.ones(9, dtype=torch.bool), torch.zeros(9, dtype=torch.bool)).p_worse() == 0.5 ** 9


@pytest.fixture(scope="module")
def threat_verified(lenet_package, tmp_path_factory):
    """``lenet_package`` declaring ℓ∞ 0.1, verified with AutoAttack (replayed) and Square on 20 images."""
    from ddzoo.package import load_checkpoint
    from ddzoo.verification import VerifySettings, verify_package

    package = tmp_path_factory.mktemp("threat") / "pkg"
    shutil.copytree(lenet_package, package)
    config = json.loads((package / "config.json").read_text())
    (package / "config.json").write_text(json.dumps({**config, "threat_models": [{"norm": "linf", "eps": 0.1}]}))
    store = package.parent / "adversarials"
    with pytest.MonkeyPatch.context() as patch:  # the MAC key in a cache of the fixture's own
        patch.setattr(constants, "ZOO_HOME", package.parent / "zoo_home")
        x, y = load_split("mnist", "test").tensors(limit=20)
        evaluated = autoattack(load_checkpoint(package)[0], x, y, ThreatModel("Linf", 0.1), store=store)  # zoo eval's
        result = verify_package(package, settings=VerifySettings(limit=40, square_images=20, robust_images=20,
                                                                 square_queries=100), adversarials=store)
        again = verify_package(package, artifacts=["model.onnx"],
                               settings=VerifySettings(limit=20, square_images=0, robust_images=0))
    return result["records"], store, evaluated, again["records"]


def test_artifacts_replay_the_checkpoints_autoattack_and_are_paired_with_it(threat_verified):
    records, store, evaluated, again = threat_verified
    assert len(list(store.glob("*.safetensors"))) == 1  # 20 images: one stored batch of 100
    baseline = records[WEIGHTS]["robust"]["Linf 0.1"]
    assert baseline["label"] == "AutoAttack ℓ∞ 0.1, n = 20" and baseline["images"] == 20
    assert baseline["batches"] == {"total": 1, "reused": 1, "reused_unverified": 0}  # what zoo eval stored
    assert baseline["accuracy"] == pytest.approx(evaluated.robust.float().mean().item())
    assert 0 < baseline["accuracy"] < 1 and baseline["square"]["images"] == 20
    fp32 = records["model.onnx"]["robust"]["Linf 0.1"]
    assert fp32["attack"] == REPLAYED and fp32["label"] == "AutoAttack, replayed ℓ∞ 0.1, n = 20"
    assert abs(fp32["accuracy"] - baseline["accuracy"]) <= 1 / 20
    assert fp32["robust_drop"]["images"] == 20 and fp32["square"]["robust_drop"]["images"] == 20
    combined = fp32["combined"]  # robust only where the replay and Square both failed
    assert combined["accuracy"] <= min(fp32["accuracy"], fp32["square"]["accuracy"]) + 1e-9
    assert again[WEIGHTS]["robust"] == records[WEIGHTS]["robust"]  # --robust 0 keeps what was measured
    assert again["model.onnx"]["robust"] == records["model.onnx"]["robust"]
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx"):
        record = ArtifactRecord.from_json(records[name])
        assert "Linf 0.1" in record.robust and record.gate.details["max_robust_drop"] == 0.0
    assert records["model.onnx"]["gate"]["passed"]
    assert list(records["model.onnx"]).index("robust") == list(records["model.onnx"]).index("square") + 1


def test_a_package_without_a_threat_model_has_no_robust_field(verified_package):
    _, result = verified_package
    assert all("robust" not in record for record in result["records"].values())
    assert Gate().max_robust_drop == 0.0


def test_cards_and_listings_carry_robust_accuracy_labelled_with_norm_eps_attack_and_n(threat_verified):
    from ddzoo.package import read_config, read_verification
    from ddzoo.zoo.card import make_card
    from ddzoo.zoo.listing import package_facts

    records, store, _, _ = threat_verified
    package = store.parent / "pkg"
    facts = package_facts(package)
    assert facts["robust"]["Linf 0.1"]["label"] == "AutoAttack ℓ∞ 0.1, n = 20"
    assert facts["robust"]["Linf 0.1"]["accuracy"] == records[WEIGHTS]["robust"]["Linf 0.1"]["accuracy"]
    card = make_card(package, "lenet-threat", read_config(package), read_verification(package), [],
                     peers=[("lenet-plain", read_config(package), {"records": {}})])
    assert "name: AutoAttack, replayed ℓ∞ 0.1, n = 20 (model.int8.onnx)" in card  # the model-index metrics
    assert "name: AutoAttack ℓ∞ 0.1, n = 20 (model.safetensors)" in card
    assert "name: Square ℓ∞ 0.1, n = 20 (model.onnx)" in card and "robust (declared threat models)" in card
    assert "## Robust accuracy per threat model (as deployed)" in card and "| model.int8.onnx | ℓ∞ 0.1 |" in card


def test_the_site_shows_a_declared_threat_models_figure_in_its_column():
    from ddzoo.site.entries import RobustColumn as Column
    from ddzoo.site.entries import _robust

    checkpoint = {"strong": {"autoattack": {"Linf": {"eps": 8 / 255, "accuracy": 0.40, "ci95": [0.3, 0.5],
                                                     "images": 100}}},
                  "robust": {"Linf 8/255": {"norm": "Linf", "eps": 8 / 255, "accuracy": 0.41, "ci95": [0.38, 0.44],
                                            "images": 1000}}}
    found = _robust(checkpoint)
    column = Column("AutoAttack", "Linf", 8 / 255)
    assert list(found) == [column] and found[column].images == 1000  # the declared threat model's figure wins
    assert column.budget == "ℓ∞ ε = 8/255"


def test_a_package_declaring_a_threat_model_fails_the_gate_without_its_figures():
    from ddzoo.records import GateResult
    from ddzoo.stats import Accuracy

    record = ArtifactRecord(artifact="model.onnx", sha256="0" * 64, clean=Accuracy(0.9, (0.89, 0.91), 1000),
                            runtime={"precision": "fp32"}, gate=GateResult(False), rho2_ratio=1.0,
                            accuracy_drop=PairedDrop(0.0, (0.0, 0.0), 1000, 0, 0))
    verdict = Gate().judge(record, record, declared=("Linf 8/255",))
    assert not verdict.passed and "no robust accuracy at the declared threat model(s) Linf 8/255" in verdict.reasons[0]
    assert Gate().judge(record, record).passed
