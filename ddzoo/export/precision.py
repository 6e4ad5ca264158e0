"""Precision variants of an fp32 ONNX model: fp16, and INT8 as explicit Q/DQ (what TensorRT 10/11 consume).

fp16 keeps float32 inputs and outputs (casts inside the graph), so every variant takes the same [0, 1]
pixels. INT8 uses onnxruntime's static quantisation in QDQ format with symmetric int8 activations and
per-channel symmetric weights (TensorRT's explicit-quantisation rules), calibrated on real training images.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ddzoo.data import load_split
from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.fileio import atomic_write_bytes
from ddzoo.optional import require

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def to_fp16(source: Path, target: Path) -> Path:
    """Write an fp16 copy of ``source`` with float32 inputs/outputs kept."""
    onnx = require("onnx", "fp16 conversion", extra="onnx")
    float16 = require("onnxruntime.transformers.float16", "fp16 conversion", extra="onnx")
    onnx_ir = require("onnx_ir", "fp16 conversion", extra="onnx", package="onnx-ir")
    from onnx_ir.passes.common import TopologicalSortPass

    converted = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    ir_model = onnx_ir.from_proto(converted)  # the converter appends its input casts after their users
    TopologicalSortPass()(ir_model)
    model = onnx_ir.to_proto(ir_model)
    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(target, model.SerializeToString())
    return target


def calibration_images(dataset: str, count: int, seed: int) -> tuple[torch.Tensor, dict]:
    """``count`` training images drawn with ``seed``, and the record that identifies them."""
    split = load_split(dataset, "train")
    if not 1 <= count <= len(split):
        raise InvalidArgumentError(f"calibration count must be in 1..{len(split)}, got {count}")
    indices = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    images = torch.from_numpy(split.images[indices.numpy()]).float().div_(255.0)
    record = {"dataset": dataset, "split": "train", "count": count, "seed": seed,
              "indices_sha256": hashlib.sha256(indices.numpy().astype("<i8").tobytes()).hexdigest()}
    return images, record


def to_int8(source: Path, target: Path, *, dataset: str, count: int = 512, seed: int = 0,
            method: str = "minmax", batch_size: int = 64) -> dict:
    """Write an INT8 Q/DQ copy of ``source`` calibrated on real training images; returns the calibration record.

    Its weights keep to 7 bits (onnxruntime's ``reduce_range``): on x86 CPUs without VNNI, onnxruntime sums pairs of
    u8 x s8 products in saturating 16 bits, and full 8-bit weights overflow them (a ResNet-20 lost 1.8 points there
    that it kept on an AVX-512 VNNI CPU); 2 x 255 x 64 cannot."""
    quantization = require("onnxruntime.quantization", "INT8 quantisation", extra="onnx")
    methods = {"minmax": quantization.CalibrationMethod.MinMax, "entropy": quantization.CalibrationMethod.Entropy,
               "percentile": quantization.CalibrationMethod.Percentile}
    if method not in methods:
        raise InvalidArgumentError(f"unknown calibration method {echo(method)}; choose one of: {', '.join(methods)}")
    images, record = calibration_images(dataset, count, seed)
    onnx = require("onnx", "INT8 quantisation", extra="onnx")
    input_name = onnx.load(str(source)).graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = (images[i : i + batch_size].numpy()
                                                  for i in range(0, len(images), batch_size))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quantization.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantization.quantize_static(
            str(prepared), str(quantized), Reader(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=methods[method], reduce_range=True,  # 7-bit weights: ddzoo.device.INT8_FEATURES
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
        model = onnx.load(str(quantized))
        onnx.checker.check_model(model, full_check=True)
        atomic_write_bytes(target, model.SerializeToString())
    return {**record, "method": method, "format": "QDQ", "activations": "int8 symmetric per-tensor",
            "weights": "int8 symmetric per-channel, 7-bit range (the same results with and without VNNI)"}
