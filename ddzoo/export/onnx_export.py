"""ONNX export of a checkpoint: dynamic batch axis, normalisation inside the graph, [0, 1] pixels in.

Uses torch's ``torch.export``-based exporter (``dynamo=True``, needs ``onnxscript``), then checks the file with
``onnx.checker`` before it is renamed into place.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from ddzoo.fileio import atomic_write_bytes
from ddzoo.optional import require

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def set_metadata(model, metadata: dict[str, str]) -> None:
    """Replace the ONNX model's ``metadata_props`` entries named in ``metadata``."""
    kept = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def export_onnx(model: torch.nn.Module, input_shape: tuple[int, ...], path: Path, metadata: dict[str, str]) -> Path:
    """Export ``model`` (taking [0, 1] pixels of ``input_shape``) to ``path`` with a dynamic batch axis.

    Args:
        model: a :class:`~ddzoo.models.Classifier` (its ``Normalize`` layer goes into the graph).
        input_shape: (C, H, W).
        path: the ``.onnx`` file to write (atomically).
        metadata: strings stored in the file's ``metadata_props`` (architecture, dataset, classes ...).
    """
    onnx = require("onnx", "ONNX export", extra="onnx")
    require("onnxscript", "ONNX export", extra="onnx")  # torch's exporter needs it
    model = model.to("cpu").eval()
    example = torch.rand(2, *input_shape)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(model, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},), opset_version=OPSET, dynamo=True, verbose=False)
    proto = program.model_proto
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return path
