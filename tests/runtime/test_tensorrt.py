"""TensorRT engines: built from the package's ONNX files and run through TrtRunner (needs tensorrt + a GPU)."""

from __future__ import annotations

import pytest
import torch

trt = pytest.importorskip("tensorrt", reason="tensorrt is not installable on this machine (NVIDIA index only)")
if not torch.cuda.is_available():
    pytest.skip("TensorRT needs a CUDA GPU; none is visible", allow_module_level=True)


@pytest.mark.parametrize("precision, atol, agreement", [("fp32", 1e-3, 1.0), ("fp16", 5e-2, 0.999),
                                                         ("int8", None, 0.98)])
def test_engine_matches_checkpoint(lenet_package, mnist_test, precision, atol, agreement):
    from ddzoo.export.tensorrt import build_engine
    from ddzoo.runtime import open_runner

    meta = build_engine(lenet_package, precision)
    x, _ = mnist_test.tensors(limit=1000)
    with open_runner(lenet_package, backend="torch") as reference, open_runner(lenet_package / meta["engine"]) as eng:
        expected, actual = reference.predict(x), eng.predict(x)
    assert eng.backend == "tensorrt" and eng.precision == precision
    assert meta["engine"].startswith(f"engines/{trt.__version__}/sm")
    if atol is not None:
        assert (expected - actual).abs().max().item() < atol
    assert (expected.argmax(1) == actual.argmax(1)).float().mean().item() >= agreement
