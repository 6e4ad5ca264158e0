"""Which artifact of a package to run: the one chooser behind ``ddzoo.load`` and ``zoo serve``."""

from __future__ import annotations

from pathlib import Path

from ddzoo.errors import InvalidArgumentError
from ddzoo.package import ONNX, ONNX_FORMATS, WEIGHTS, artifact_for, check_format, engine_dir, engine_name
from ddzoo.runtime.loader import check_backend

BACKEND_ARTIFACTS = {"torch": WEIGHTS, "ort": ONNX}  # backends that run one fixed file of a package


def local_engine(package: Path | str) -> Path | None:
    """The package's TensorRT engine for this machine's TensorRT version and GPU (fp16, then int8, then fp32),
    or None when TensorRT, a GPU or such an engine is missing."""
    import torch

    from ddzoo.runtime.trt import tensorrt_installed

    if not tensorrt_installed() or not torch.cuda.is_available():
        return None
    import tensorrt

    folder = engine_dir(Path(package), tensorrt.__version__, torch.cuda.get_device_capability())
    return next((folder / engine_name(p) for p in ("fp16", "int8", "fp32") if (folder / engine_name(p)).is_file()),
                None)


def choose_artifact(package: Path | str, *, format: str | None = None, backend: str = "auto") -> str:
    """The artifact to run, as a path inside ``package``.

    Args:
        format: one of :data:`~ddzoo.package.FORMATS`: its file (``trt``: this machine's engine); it must exist.
        backend: without ``format``: ``torch`` the weights, ``ort`` ``model.onnx``, ``trt`` this machine's
            engine, ``auto`` that engine if there is one, else ``model.onnx`` (onnxruntime takes CUDA if it can).

    Raises:
        InvalidArgumentError: unknown backend; the package lacks the format or an engine for this machine.
    """
    package = Path(package)
    check_backend(backend)
    if format is not None:
        check_format(format)
    if format in ONNX_FORMATS:
        return artifact_for(package, ONNX_FORMATS[format]).name
    if format == "torch" or (format is None and backend in BACKEND_ARTIFACTS):
        return BACKEND_ARTIFACTS.get(backend if format is None else "torch")
    engine = local_engine(package)
    if engine is not None:
        return engine.relative_to(package).as_posix()
    if format == "trt" or backend == "trt":
        raise InvalidArgumentError(f"{package} has no TensorRT engine for this GPU and TensorRT version (it needs "
                                   "the tensorrt package and a GPU); build one with 'zoo export --formats trt-fp16' "
                                   "or run model.onnx (format onnx, --backend ort)")
    return ONNX
