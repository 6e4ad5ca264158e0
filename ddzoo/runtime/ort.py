"""OrtRunner: any ONNX file on onnxruntime, reporting the execution provider the session really uses."""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np
import torch

from ddzoo.device import VNNI_FEATURES, describe_cpu
from ddzoo.errors import InvalidArgumentError, echo, shorten
from ddzoo.optional import require
from ddzoo.package import precision_of
from ddzoo.runtime.base import InputSpec, Runner

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
SATURATION_FREE_WEIGHT = 64  # |int8 weight| at most this: 2 x 255 x 64 fits the int16 sums of non-VNNI kernels


class Int8SaturationWarning(UserWarning):
    """An INT8 artifact whose figures this CPU cannot reproduce: see :func:`int8_saturates`."""


def largest_int8_weight(path: Path | str) -> int:
    """The largest |int8 initializer| of an ONNX file (its quantised weights; 0 without any), read without its
    external data; an :class:`InvalidArgumentError` naming the fix when onnx cannot read it."""
    onnx = require("onnx", "INT8 artifacts", extra="onnx")
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
        weights = [numpy_helper.to_array(t) for t in graph.initializer
                   if t.data_type == onnx.TensorProto.INT8 and t.data_location != onnx.TensorProto.EXTERNAL]
    except Exception as err:  # noqa: BLE001 - onnx raises many kinds on a crafted file: one line naming the fix
        raise InvalidArgumentError(f"{Path(path).name}: cannot read its INT8 weights ({type(err).__name__}: "
                                   f"{shorten(str(err), 80)}); export it again with 'zoo export'") from None
    return max((int(np.abs(w.astype(np.int16)).max(initial=0)) for w in weights), default=0)


def int8_saturates(path: Path | str, provider: str = "CPUExecutionProvider") -> bool:
    """Whether onnxruntime's INT8 kernels can saturate on ``path`` here: on an x86 CPU without VNNI they sum pairs
    of u8 activation x s8 weight products in int16, which weights beyond ±64 (8-bit weights, as ddzoo exported
    before it kept them to 7 bits) can overflow; the artifact then computes something else than on a CPU with VNNI.
    False where the CPU's features are unknown."""
    features = describe_cpu()["features"]
    if (provider != "CPUExecutionProvider" or platform.machine().lower() not in ("x86_64", "amd64")
            or features is None or set(VNNI_FEATURES) & set(features)):
        return False
    return largest_int8_weight(path) > SATURATION_FREE_WEIGHT


def warn_if_int8_saturates(path: Path, provider: str, fix: str) -> None:
    """An :class:`Int8SaturationWarning` (to the runner's caller) where :func:`int8_saturates`; ``fix``: what to do."""
    if int8_saturates(path, provider):
        warnings.warn(f"{path.name}: its 8-bit weights can overflow onnxruntime's INT8 kernels on this CPU (x86 "
                      "without VNNI): it may compute differently here than on CPUs with VNNI, and a record made on "
                      f"one need not hold on the other; {fix}", Int8SaturationWarning, stacklevel=4)


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
        if self.precision == "int8":
            warn_if_int8_saturates(self.path, self.provider, "export it again with 'zoo export' (7-bit weights) or "
                                   "verify it on the CPU it will serve on")
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
        raise InvalidArgumentError(_load_failure(path, err)) from err
    return session, session.get_providers()[0], ort.__version__


def _load_failure(path: Path, err: Exception) -> str:
    """Why onnxruntime could not load ``path``, in full: the external-data files it lacks, else its own words."""
    missing = missing_external_data(path)
    if missing:
        return (f"{path}: its weights are kept in external data files that are not beside it: "
                f"{', '.join(echo(m) for m in missing[:5])}{' ...' if len(missing) > 5 else ''} (looked for in "
                f"{path.parent}); copy them next to the model, or re-save it with the weights inside")
    first = shorten((str(err).splitlines() or [""])[0], 300)
    return f"{path}: onnxruntime cannot load it ({type(err).__name__}: {first}); is it a complete ONNX model?"


def missing_external_data(path: Path) -> list[str]:
    """The external data files (ONNX ``location`` entries) the model at ``path`` names and its folder lacks;
    empty when it names none or cannot be read as ONNX."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not parsable: onnxruntime's own message says more
        return []
    tensors = list(model.graph.initializer)
    tensors += [a.t for node in model.graph.node for a in node.attribute if a.HasField("t")]
    locations = {entry.value for tensor in tensors if tensor.data_location == onnx.TensorProto.EXTERNAL
                 for entry in tensor.external_data if entry.key == "location"}
    return sorted(loc for loc in locations if not (path.parent / loc).is_file())
