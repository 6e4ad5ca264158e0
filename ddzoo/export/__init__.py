"""``zoo export``: a checkpoint becomes a model package (:mod:`~ddzoo.export.build`), from the ONNX graph
(:mod:`~ddzoo.export.onnx_export`) and its precision variants (:mod:`~ddzoo.export.precision`) to TensorRT
engines (:mod:`~ddzoo.export.tensorrt`) and a Triton model repository (:mod:`~ddzoo.export.triton`).
"""

from ddzoo.export.build import export_package, parse_formats

__all__ = ["export_package", "parse_formats"]
