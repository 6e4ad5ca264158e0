"""Typed verification records: one serialisation each, published files re-serialise byte-identically."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ddzoo.errors import CheckpointError
from ddzoo.package import WEIGHTS
from ddzoo.records import (
    ARTIFACT_KEYS,
    CLEAN_CORRECT,
    DEEPFOOL_ITERATIONS,
    HEADLINE_ITERATIONS,
    ArtifactRecord,
    DeepFoolSummary,
    GateResult,
    gate_failure_message,
    pack_flags,
    parse_records,
    unpack_flags,
)
from ddzoo.stats import Accuracy, PairedDrop

PUBLISHED = sorted((Path(__file__).resolve().parents[1] / "ddzoo" / "hub").glob("*/*/verification.json"))


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.parent.parent.name)
def test_published_records_re_serialise_byte_identically(path):
    text = path.read_text()
    verification = json.loads(text)
    records = parse_records(verification)
    again = {**verification, "records": {name: record.to_json() for name, record in records.items()}}
    assert json.dumps(again, indent=2) + "\n" == text
    assert records[WEIGHTS].rho2_ratio == 1.0 and records[WEIGHTS].accuracy_drop is None
    assert all(r.headline_rho2 == r.deepfool[str(HEADLINE_ITERATIONS)].rho2 for r in records.values())


def test_published_records_exist():
    assert len(PUBLISHED) >= 12


def test_the_headline_budget_is_one_of_the_measured_ones():
    from ddzoo.verification import VerifySettings

    assert HEADLINE_ITERATIONS in DEEPFOOL_ITERATIONS and VerifySettings().iterations == DEEPFOOL_ITERATIONS
    settings = VerifySettings(square_images=7, strong_images=3, crosscheck_images=2).record()
    assert (settings["square"], settings["strong"], settings["crosscheck"]) == (7, 3, 2)  # JSON names kept


def test_deepfool_summary_round_trips_with_and_without_a_box():
    norms, x_norms = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 10.0, 10.0])
    fooled, steps = torch.tensor([True, True, False]), torch.tensor([2, 3, 50])
    plain = DeepFoolSummary.measure(norms, x_norms, fooled, steps)
    assert plain.rho2 == pytest.approx(0.2) and plain.rho2_fooled == pytest.approx(0.15)
    assert list(plain.to_json()) == ["rho2", "rho2_fooled", "fooled", "mean_iterations"]
    boxed = DeepFoolSummary.measure(norms, x_norms, fooled, steps, max_iter=50, fooled_8bit=0.5)
    assert list(boxed.to_json()) == ["max_iter", "rho2", "rho2_fooled", "fooled", "mean_iterations", "fooled_8bit"]
    for summary in (plain, boxed):
        assert DeepFoolSummary.from_json(summary.to_json()) == summary
    none = DeepFoolSummary.measure(norms, x_norms, torch.zeros(3, dtype=torch.bool), steps)
    assert math.isnan(DeepFoolSummary.from_json(json.loads(json.dumps(none.to_json()))).rho2_fooled)


def _record(**fields) -> ArtifactRecord:
    base = {"artifact": "model.onnx", "sha256": "0" * 64, "clean": Accuracy(0.9, (0.8, 0.95), 100),
            "runtime": {"backend": "onnxruntime", "precision": "fp32"}, "gate": GateResult(True, (), {"x": 1})}
    return ArtifactRecord(**{**base, **fields})


def test_a_new_record_takes_the_artifact_layout_and_round_trips():
    record = _record(deepfool={"50": DeepFoolSummary(0.1, 0.1, 1.0, 3.0)}, top1_agreement=1.0, rho2_ratio=0.99,
                     accuracy_drop=PairedDrop(0.0, (0.0, 0.0), 100, 0, 0), crosscheck=None,
                     extra={"verified_at": "now", "dataset": "mnist"})
    data = record.to_json()
    assert list(data) == [k for k in ARTIFACT_KEYS if k in data] and data["crosscheck"] is None
    assert "square" in data and data["square"] is None  # in the layout: stated as null
    assert ArtifactRecord.from_json(data).to_json() == data and ArtifactRecord.from_json(data).headline_rho2 == 0.1
    trimmed = replace(record, order=tuple(k for k in ARTIFACT_KEYS if k != "square"))
    assert "square" not in trimmed.to_json()  # Square not run: no field


@pytest.mark.parametrize("count", [1, 7, 8, 9, 200, 10_000])
def test_per_image_flags_round_trip(count):
    flags = torch.rand(count, generator=torch.Generator().manual_seed(count)) < 0.7
    text = pack_flags(flags)
    assert len(text) == 4 * math.ceil(math.ceil(count / 8) / 3) and torch.equal(unpack_flags(text, count), flags)
    record = _record(clean=Accuracy.of(flags), extra={CLEAN_CORRECT: text})
    assert torch.equal(ArtifactRecord.from_json(record.to_json()).correct_flags(), flags)
    assert list(record.to_json())[:4] == ["images", "clean_accuracy", "clean_accuracy_ci95", CLEAN_CORRECT]


def test_malformed_or_inconsistent_flags_are_one_line_errors():
    flags = torch.tensor([True] * 90 + [False] * 10)
    good = pack_flags(flags)
    assert _record().correct_flags() is None  # written before the flags were kept
    for bad in [good[:-4], good + "AAAA", "!" * len(good), 12345, good[:-2] + "A=",
                pack_flags(torch.ones(104, dtype=torch.bool))]:  # bits set past the 100th image
        with pytest.raises(CheckpointError, match="clean_correct") as err:
            _ = _record(clean=Accuracy.of(flags), extra={CLEAN_CORRECT: bad}).correct_flags()
        assert "\n" not in str(err.value)
    for accuracy in (float("nan"), float("inf")):  # JSON's NaN and Infinity parse
        with pytest.raises(CheckpointError, match="clean_correct"):
            _record(clean=Accuracy(accuracy, (0.0, 1.0), 100), extra={CLEAN_CORRECT: good}).correct_flags()
    with pytest.raises(CheckpointError, match="90 of 100 images right, but clean_accuracy says 0.95"):
        _ = _record(clean=Accuracy(0.95, (0.9, 0.98), 100), extra={CLEAN_CORRECT: good}).correct_flags()


def test_an_incomplete_record_is_one_line():
    with pytest.raises(CheckpointError, match="incomplete verification record") as err:
        ArtifactRecord.from_json({"artifact": "model.onnx", "gate": "yes"}, "pkg: model.onnx")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("images", [1e400, -5, True, "100", 100.0], ids=["Infinity", "negative", "bool", "text",
                                                                         "float"])
def test_a_hostile_image_count_is_a_one_line_error_and_verifies_nothing(images, tmp_path):
    from ddzoo.package import VERIFICATION_FORMAT, verification_status

    data = {**_record().to_json(), "images": images}
    with pytest.raises(CheckpointError, match="images must be a non-negative integer") as err:
        ArtifactRecord.from_json(json.loads(json.dumps(data)))  # JSON reads 1e400 as Infinity
    assert "\n" not in str(err.value)
    drop = {**data, "images": 100, "accuracy_drop": {"drop": 0.0, "ci95": [0.0, 0.0], "images": 100, "lost": images,
                                                     "gained": 0}}
    with pytest.raises(CheckpointError, match="lost must be a non-negative integer"):
        ArtifactRecord.from_json(drop)
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "verification.json").write_text(json.dumps({"format": VERIFICATION_FORMAT,
                                                            "records": {"model.onnx": data}}))
    assert verification_status(tmp_path) == {"model.onnx": "unverified"}


def test_the_gate_failure_message_names_each_failed_artifact():
    gates = {"a.onnx": GateResult(True), "b.onnx": GateResult(False, ("r1", "r2")),
             "c.onnx": GateResult(False, ("r3",))}
    assert gate_failure_message(gates) == "gate failed for b.onnx: r1, r2; c.onnx: r3"
    assert gate_failure_message({"a.onnx": GateResult(True)}) is None
    assert GateResult.from_json(GateResult(False, ("r",), {"note": "n"}).to_json()) == GateResult(False, ("r",),
                                                                                                 {"note": "n"})


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "docs" / "records").glob("*.jsonl")),
                         ids=lambda p: p.name)
def test_published_run_logs_stay_readable(path):
    """docs/records/*.jsonl are training-run logs (no typed record reads them): each line parses and
    re-serialises to itself."""
    for line in path.read_text().splitlines():
        assert json.dumps(json.loads(line)) == line


def test_artifacts_and_records_are_listed_checkpoint_fp32_fp16_int8_then_engines(tmp_path):
    from ddzoo.package import VERIFICATION_FORMAT, package_artifacts, read_verification, write_verification

    engines = ["engines/10.3/sm89/model.int8.plan", "engines/10.3/sm89/model.plan"]
    for name in ["model.int8.onnx", "model.onnx", "model.fp16.onnx", WEIGHTS, *engines]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    expected = ["model.onnx", "model.fp16.onnx", "model.int8.onnx", *reversed(engines)]
    assert package_artifacts(tmp_path) == expected
    shuffled = {name: {"n": i} for i, name in enumerate(sorted([WEIGHTS, *expected]))}
    write_verification(tmp_path, {"format": VERIFICATION_FORMAT, "records": shuffled})
    assert list(json.loads((tmp_path / "verification.json").read_text())["records"]) == [WEIGHTS, *expected]
    (tmp_path / "verification.json").write_text(json.dumps({"format": VERIFICATION_FORMAT, "records": shuffled}))
    assert list(read_verification(tmp_path)["records"]) == [WEIGHTS, *expected]  # as the site and cards list them
