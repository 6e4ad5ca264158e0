"""``zoo export``: ONNX fp32 exact on the full test set, fp16 and INT8 Q/DQ close, records and atomic writes."""

from __future__ import annotations

import json
import shutil

import pytest

from ddzoo.cli import main
from ddzoo.errors import InvalidArgumentError
from ddzoo.export import export_package, parse_formats
from ddzoo.fileio import sha256_file


@pytest.fixture(scope="module")
def record(lenet_package):
    return json.loads((lenet_package / "export.json").read_text())


def test_fp32_onnx_matches_torch_on_the_full_test_set(record):
    parity = record["artifacts"]["model.onnx"]["parity"]
    assert parity["images"] == 10_000
    assert parity["max_abs_logit_error"] < 1e-4
    assert parity["top1_agreement"] == 1.0


def test_onnx_graph_is_checked_and_has_a_dynamic_batch(lenet_package):
    import onnx

    model = onnx.load(str(lenet_package / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["ddzoo.arch"] == "lenet" and metadata["ddzoo.input_range"] == "0,1"
    assert any(node.op_type == "Sub" for node in model.graph.node)  # the normalisation is inside


def test_fp16_variant_is_close(record):
    parity = record["artifacts"]["model.fp16.onnx"]["parity"]
    assert parity["max_abs_logit_error"] < 0.05 and parity["top1_agreement"] >= 0.999


def test_int8_is_qdq_calibrated_on_training_images_and_within_one_point(record, lenet_package):
    import onnx

    entry = record["artifacts"]["model.int8.onnx"]
    ops = {node.op_type for node in onnx.load(str(lenet_package / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    calibration = entry["quantization"]
    assert calibration["split"] == "train" and calibration["count"] == 512 and len(calibration["indices_sha256"]) == 64
    fp32 = record["artifacts"]["model.onnx"]["parity"]["accuracy"]
    assert fp32 - entry["parity"]["accuracy"] <= 0.01


def test_int8_weights_keep_to_seven_bits_so_no_cpu_saturates_them(record, lenet_package):
    """Without VNNI, onnxruntime sums pairs of u8 activation x s8 weight products in saturating int16: weights within
    ±64 keep every pair within 2 x 255 x 64 = 32,640 <= 32,767, with and without VNNI alike."""
    import onnx
    from onnx import numpy_helper

    from ddzoo.runtime.ort import SATURATION_FREE_WEIGHT

    graph = onnx.load(str(lenet_package / "model.int8.onnx")).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights
    largest = max(int(abs(w.astype(int)).max()) for w in weights)
    assert SATURATION_FREE_WEIGHT // 2 < largest <= SATURATION_FREE_WEIGHT == 64  # the 7-bit range, all of it used
    assert "7-bit" in record["artifacts"]["model.int8.onnx"]["quantization"]["weights"]


def test_records_hold_current_sha256(record, lenet_package):
    for name, entry in record["artifacts"].items():
        assert entry["sha256"] == sha256_file(lenet_package / name)
        assert entry["runtime"]["backend"] == "onnxruntime"


@pytest.mark.parametrize("text, expected", [("onnx", ["onnx"]), ("int8,onnx", ["onnx", "int8"]),
                                            ("trt-fp16", ["fp16", "trt-fp16"])])
def test_parse_formats(text, expected):
    assert parse_formats(text) == expected


def test_unknown_format_and_missing_checkpoint_fail_cleanly(tmp_path, lenet_checkpoint, capsys):
    with pytest.raises(InvalidArgumentError, match="choose from: onnx, fp16, int8"):
        parse_formats("onnx,fp64")
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "pkg")]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


def test_failed_export_keeps_the_old_package(tmp_path, lenet_checkpoint, monkeypatch):
    out = tmp_path / "pkg"
    export_package(lenet_checkpoint, out, formats="onnx", parity_limit=100)
    before = sha256_file(out / "model.onnx")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash during quantisation")

    monkeypatch.setattr("ddzoo.export.precision.to_int8", broken)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_package(lenet_checkpoint, out, formats="onnx,int8", parity_limit=100)
    assert sha256_file(out / "model.onnx") == before and not (out / "model.int8.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]  # no temporary folder left behind


def test_cli_export_json(tmp_path, lenet_checkpoint, capsys):
    assert main(["export", str(lenet_checkpoint), "--out", str(tmp_path / "pkg"), "--formats", "onnx",
                 "--parity-limit", "200", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed["artifacts"]) == ["model.onnx"]
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == [
        "config.json", "export.json", "model.onnx", "model.safetensors"]


def test_a_model_trained_from_scratch_takes_its_references_eps_ref(tmp_path, lenet_checkpoint, capsys):
    """An adversarially trained model with no ``init`` records no reference: ``--reference`` gives its package the
    family reference's ε_ref (verification's ℓ∞ grid); a reference without one is a one-line error."""
    scratch = tmp_path / "scratch"
    shutil.copytree(lenet_checkpoint, scratch)
    config = json.loads((scratch / "config.json").read_text())
    config.pop("eps_ref", None)
    config["recipe"] = {"name": "adversarial", "norm": "linf", "eps": 0.3}
    (scratch / "config.json").write_text(json.dumps(config))
    (scratch / "eps_ref.json").unlink(missing_ok=True)
    reference = tmp_path / "reference"
    shutil.copytree(lenet_checkpoint, reference)
    (reference / "eps_ref.json").write_text(json.dumps({"fgs": 0.11, "bim": 0.09, "samples": 100}))
    args = ["export", str(scratch), "--formats", "onnx", "--parity-limit", "100"]
    assert main([*args, "--out", str(tmp_path / "pkg"), "--reference", str(reference)]) == 0
    assert json.loads((tmp_path / "pkg" / "config.json").read_text())["eps_ref"]["bim"] == 0.09
    (reference / "eps_ref.json").unlink()
    assert main([*args, "--out", str(tmp_path / "pkg2"), "--reference", str(scratch)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no eps_ref record; run 'zoo eval" in err
    assert not (tmp_path / "pkg2").exists()
