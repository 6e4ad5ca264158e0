"""Runners: the same logits from torch and onnxruntime, input checks, backend selection, lazy TensorRT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddzoo.device import INT8_FEATURES
from ddzoo.errors import InvalidArgumentError, MissingDependencyError
from ddzoo.runtime import open_runner
from ddzoo.runtime.trt import tensorrt_installed


def test_torch_and_ort_runners_agree(lenet_package, mnist_test):
    x, _ = mnist_test.tensors(limit=300)
    with open_runner(lenet_package, backend="torch") as torch_runner, open_runner(lenet_package) as ort_runner:
        assert ort_runner.backend == "onnxruntime" and ort_runner.provider == "CPUExecutionProvider"
        assert ort_runner.describe()["precision"] == "fp32" and torch_runner.precision == "fp32"
        assert ort_runner.input_spec.shape == (1, 28, 28)
        assert (ort_runner.predict(x) - torch_runner.predict(x)).abs().max().item() < 1e-4


def test_spin_wait_off_reaches_the_session_and_keeps_the_logits(lenet_package, mnist_test):
    x, _ = mnist_test.tensors(limit=20)
    with open_runner(lenet_package) as spinning, open_runner(lenet_package, spin_wait=False) as resting:
        entry = "session.intra_op.allow_spinning"
        assert resting.session.get_session_options().get_session_config_entry(entry) == "0"
        assert torch.equal(spinning.predict(x), resting.predict(x))


@pytest.mark.parametrize("name, precision", [("model.fp16.onnx", "fp16"), ("model.int8.onnx", "int8")])
def test_precision_variants_take_float32_pixels(lenet_package, mnist_test, name, precision):
    x, _ = mnist_test.tensors(limit=10)
    with open_runner(lenet_package / name) as runner:
        logits = runner.predict(x)
    assert runner.precision == precision and logits.dtype == torch.float32 and logits.shape == (10, 10)


def _with_eight_bit_weights(int8: Path, out: Path) -> Path:
    """A copy of an INT8 artifact with one weight moved to 127, as ddzoo's exports had before 7-bit weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(int8))
    weight = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.dims)
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] = 127
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(out))
    return out


def test_the_cpu_is_in_the_description_and_eight_bit_weights_warn_where_they_saturate(lenet_package, tmp_path,
                                                                                      monkeypatch, mnist_test):
    """Without VNNI (x86), onnxruntime's INT8 kernels overflow on weights beyond ±64: opening such an artifact there
    warns; ddzoo's own exports (7-bit weights) and CPUs with VNNI do not."""
    import warnings

    from ddzoo.runtime import ort

    eight_bit = _with_eight_bit_weights(lenet_package / "model.int8.onnx", tmp_path / "model.int8.onnx")
    monkeypatch.setattr(ort.platform, "machine", lambda: "x86_64")
    for features, saturates in ((["avx2"], True), (["avx2", "avx512f", "avx512_vnni"], False),
                                (["avx2", "avx_vnni"], False), (None, False)):  # None: the system does not tell
        monkeypatch.setattr(ort, "describe_cpu", lambda features=features: {"features": features})
        assert ort.int8_saturates(eight_bit) is saturates and not ort.int8_saturates(lenet_package / "model.int8.onnx")
        assert not ort.int8_saturates(eight_bit, provider="CUDAExecutionProvider")
    monkeypatch.setattr(ort, "describe_cpu", lambda: {"features": ["avx2"]})
    with pytest.warns(ort.Int8SaturationWarning, match="8-bit weights can overflow .* export it again"):
        with open_runner(eight_bit) as runner:
            runner.predict(mnist_test.tensors(limit=2)[0])
    from ddzoo.runtime.foreign import ForeignOnnxRunner, InputConvention

    with pytest.warns(ort.Int8SaturationWarning, match="8-bit weights can overflow .* reduce_range=True"):
        ForeignOnnxRunner(eight_bit, (1, 28, 28), InputConvention("nchw", output="logits")).close()
    (tmp_path / "broken.int8.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(InvalidArgumentError, match="broken.int8.onnx: cannot read its INT8 weights"):
        ort.int8_saturates(tmp_path / "broken.int8.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_runner(lenet_package / "model.int8.onnx") as runner:
            assert runner.describe()["precision"] == "int8"
    monkeypatch.undo()
    with open_runner(lenet_package) as runner:
        cpu = runner.runtime_record()["cpu"]
    assert cpu["model"] and cpu["machine"] and set(cpu["features"] or ()) <= set(INT8_FEATURES)


def test_predict_rejects_wrong_shape_and_dtype(lenet_package):
    with open_runner(lenet_package) as runner:
        with pytest.raises(InvalidArgumentError, match=r"expected shape \(N, 1, 28, 28\)"):
            runner.predict(torch.zeros(2, 3, 28, 28))
        with pytest.raises(InvalidArgumentError, match="expected float32"):
            runner.predict(torch.zeros(2, 1, 28, 28, dtype=torch.float64))
        assert runner.predict(torch.zeros(0, 1, 28, 28)).numel() == 0


@pytest.mark.parametrize("target, backend, message", [
    ("missing.onnx", "auto", "no such artifact"),
    ("model.onnx", "torch", "backend 'torch' cannot run a .onnx file"),
    ("config.json", "auto", "cannot run a .json file"),
    ("model.onnx", "cuda-magic", "unknown backend"),
])
def test_open_runner_errors_name_the_fix(lenet_package, target, backend, message):
    with pytest.raises(InvalidArgumentError, match=message):
        open_runner(lenet_package / target, backend=backend)


def test_unavailable_provider_is_refused(lenet_package):
    with pytest.raises(InvalidArgumentError, match="onnxruntime here offers"):
        open_runner(lenet_package / "model.onnx", providers=["NoSuchExecutionProvider"])


@pytest.mark.skipif(tensorrt_installed(), reason="tensorrt is installed here")
def test_tensorrt_missing_names_the_package(tmp_path):
    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"not an engine")
    with pytest.raises(MissingDependencyError, match="pip install 'ddzoo\\[tensorrt\\]'"):
        open_runner(plan)


def test_type_stubs_alone_do_not_count_as_tensorrt(tmp_path, monkeypatch):
    """PyPI's tensorrt-stubs installs a bare tensorrt/ folder: importable as an empty namespace package."""
    import sys

    from ddzoo.runtime.trt import import_tensorrt

    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.pyi").write_text("class Builder: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    assert not tensorrt_installed()
    with pytest.raises(MissingDependencyError, match="tensorrt"):
        import_tensorrt()
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
