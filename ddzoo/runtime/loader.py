"""Open a runner on an artifact: the backend follows from the file (onnxruntime and TensorRT imported only then)."""

from __future__ import annotations

from pathlib import Path

from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.package import ONNX, WEIGHTS
from ddzoo.runtime.base import Runner

BACKENDS = ("auto", "torch", "ort", "trt")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else an error listing them."""
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"unknown backend {echo(backend)}; choose one of: {', '.join(BACKENDS)}")
    return backend


def open_runner(path: Path | str, *, backend: str = "auto", providers: list[str] | None = None,
                device: str | None = None, spin_wait: bool = True) -> Runner:
    """A runner for ``path``: a checkpoint/package folder, ``model.safetensors``, an ``.onnx`` or a ``.plan``.

    Args:
        path: the artifact; a folder means its torch weights with ``backend="torch"``, else its ``model.onnx``.
        backend: ``auto`` (from the file type), ``torch``, ``ort`` or ``trt``.
        providers: onnxruntime execution providers (default: the best available).
        device: torch device for the torch backend.
        spin_wait: onnxruntime: whether idle intra-op threads spin between runs (see :class:`OrtRunner`).

    Raises:
        InvalidArgumentError: unknown backend, or a file the backend cannot run.
        MissingDependencyError: onnxruntime or tensorrt is needed and not installed.
    """
    check_backend(backend)
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError(f"{path}: no such artifact; pass a package folder, .safetensors, .onnx or .plan")
    if path.is_dir():
        path = path / (WEIGHTS if backend == "torch" else ONNX)
    kind = {".safetensors": "torch", ".onnx": "ort", ".plan": "trt"}.get(path.suffix)
    if kind is None or backend not in ("auto", kind):
        raise InvalidArgumentError(f"{path}: backend {echo(backend)} cannot run a {path.suffix or 'suffix-less'} file; "
                                   "torch runs .safetensors, ort runs .onnx, trt runs .plan")
    if kind == "torch":
        from ddzoo.runtime.torch_runner import TorchRunner

        return TorchRunner(path.parent, device=device)
    if kind == "ort":
        from ddzoo.runtime.ort import OrtRunner

        return OrtRunner(path, providers=providers, spin_wait=spin_wait)
    from ddzoo.runtime.trt import TrtRunner

    return TrtRunner(path)

