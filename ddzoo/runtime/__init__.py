"""Runners: logits from a checkpoint (torch), an ONNX file (onnxruntime) or an engine (TensorRT).

:mod:`~ddzoo.runtime.base` the Runner protocol, :mod:`~ddzoo.runtime.loader` ``open_runner`` (the backend from
the artifact), :mod:`~ddzoo.runtime.choose` which artifact of a package to run; one module per backend.
"""

from ddzoo.runtime.base import InputSpec, Runner
from ddzoo.runtime.choose import choose_artifact, local_engine
from ddzoo.runtime.loader import BACKENDS, check_backend, open_runner

__all__ = ["BACKENDS", "InputSpec", "Runner", "check_backend", "choose_artifact", "local_engine", "open_runner"]
