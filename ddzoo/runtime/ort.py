"""OrtRunner: any ONNX file on onnxruntime, reporting the execution provider the session really uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ddzoo.errors import InvalidArgumentError
from ddzoo.optional import require
from ddzoo.package import precision_of
from ddzoo.runtime.base import InputSpec, Runner

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OrtRunner(Runner):
    """An ``InferenceSession`` over an ONNX file.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers in order of preference; default: the available ones among
            TensorRT, CUDA and CPU. ``provider`` is the first one the session actually took.
        threads: intra-op threads (0: onnxruntime's default).
        spin_wait: whether idle intra-op threads spin (onnxruntime's default: faster back-to-back runs); turn it
            off where runs come with gaps that other work should use, as between a batching server's batches.
    """

    backend = "onnxruntime"

    def __init__(self, path: Path | str, providers: list[str] | tuple[str, ...] | None = None, threads: int = 0,
                 spin_wait: bool = True):
        self.path = Path(path)
        self.session, self.provider, self._version = ort_session(self.path, providers, threads, spin_wait)
        self.precision = precision_of(self.path)
        (inp,), out = self.session.get_inputs(), self.session.get_outputs()[0]
        self.input_spec = InputSpec(inp.name, tuple(int(d) for d in inp.shape[1:]), output_name=out.name)
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    @property
    def runtime_version(self) -> str:
        return self._version

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run([self.input_spec.output_name],
                                     {self.input_spec.name: x.numpy().astype(self._input_dtype, copy=False)})
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))


def ort_session(path: Path, providers: list[str] | tuple[str, ...] | None = None, threads: int = 0,
                spin_wait: bool = True):
    """``(InferenceSession, the provider it took, onnxruntime's version)`` for the ONNX file at ``path``."""
    ort = require("onnxruntime", "running ONNX artifacts", extra="onnx")
    available = ort.get_available_providers()
    wanted = list(providers) if providers else [p for p in PREFERRED_PROVIDERS if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        raise InvalidArgumentError(f"onnxruntime here offers {available}, not {missing}; choose from those")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not spin_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        raise InvalidArgumentError(f"{path}: onnxruntime cannot load it ({type(err).__name__}: "
                                   f"{str(err).splitlines()[0][:200]}); is it an ONNX model?") from err
    return session, session.get_providers()[0], ort.__version__
