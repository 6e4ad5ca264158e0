"""TrtRunner: a serialised TensorRT engine (``.plan``), dynamic batch through its optimisation profile.

TensorRT is imported lazily and only here and in :mod:`ddzoo.export.tensorrt`; device buffers are torch
CUDA tensors, so no pycuda is needed. Written against the TensorRT 10/11 name-based tensor API.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from ddzoo.errors import InvalidArgumentError, MissingDependencyError
from ddzoo.optional import require
from ddzoo.package import precision_of
from ddzoo.runtime.base import InputSpec, Runner


def tensorrt_installed() -> bool:
    """Whether the real ``tensorrt`` package is importable (type stubs alone make an empty namespace)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None


def import_tensorrt():
    """The ``tensorrt`` module, or a :class:`MissingDependencyError` naming what to install."""
    tensorrt = require("tensorrt", "TensorRT engines (build, run)", extra="tensorrt")
    if getattr(tensorrt, "__version__", None) is None:  # e.g. only tensorrt-stubs: an empty namespace package
        raise MissingDependencyError("tensorrt", "TensorRT engines (build, run)", extra="tensorrt")
    if not torch.cuda.is_available():
        raise InvalidArgumentError("TensorRT needs a CUDA GPU and none is visible; use --backend ort instead")
    return tensorrt


class TrtRunner(Runner):
    """Runs a TensorRT engine on the current CUDA device (one execution context: callers take turns)."""

    backend = "tensorrt"

    def __init__(self, path: Path | str):
        trt = import_tensorrt()
        self.path = Path(path)
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise InvalidArgumentError(f"{self.path}: TensorRT {trt.__version__} cannot load this engine; "
                                       "rebuild it here with 'zoo export --formats trt'")
        context = self.engine.create_execution_context()
        if context is None:
            raise InvalidArgumentError(f"{self.path}: TensorRT could not create an execution context (GPU memory?)")
        self.context = context
        self._turn = threading.Lock()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InvalidArgumentError(f"{self.path}: expected one input and one output, got {inputs}, {outputs}")
        _, _, largest = self.engine.get_tensor_profile_shape(inputs[0], 0)
        self.input_spec = InputSpec(inputs[0], tuple(largest[1:]), output_name=outputs[0], max_batch=largest[0])
        self.precision = precision_of(self.path)
        self.provider = f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"

    @property
    def runtime_version(self) -> str:
        return self._trt.__version__

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.input_spec
        device_x = x.to("cuda", non_blocking=True).contiguous()
        with self._turn:
            self.context.set_input_shape(spec.name, tuple(device_x.shape))
            out = torch.empty(tuple(self.context.get_tensor_shape(spec.output_name)), dtype=torch.float32,
                              device="cuda")
            self.context.set_tensor_address(spec.name, device_x.data_ptr())
            self.context.set_tensor_address(spec.output_name, out.data_ptr())
            stream = torch.cuda.current_stream()
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"{self.path}: TensorRT execution failed")
            stream.synchronize()
        return out.cpu()

    def close(self) -> None:
        for name in ("context", "engine"):  # the context first, then the engine it belongs to
            if hasattr(self, name):
                delattr(self, name)
