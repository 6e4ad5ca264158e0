"""The Runner protocol: one interface over every backend (torch, onnxruntime, TensorRT).

A runner is a context manager that maps float32 NCHW pixels in [0, 1] to logits. ``predict`` checks its
input and splits it into batches the backend accepts, then calls the backend's ``_predict``. Parity checks,
verification and the inference service all go through it, so a new backend is one new module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from ddzoo.device import describe_cpu
from ddzoo.errors import InvalidArgumentError


@dataclass(frozen=True)
class InputSpec:
    """The tensor a runner takes: its name, per-image shape (C, H, W) and the batch range it accepts."""

    name: str
    shape: tuple[int, ...]
    output_name: str = "logits"
    max_batch: int | None = None


class Runner(ABC):
    """Logits from one artifact. Subclasses set the attributes below and implement ``_predict``, which
    several threads may call at once (the service computes ``--instances`` batches concurrently)."""

    backend: str  # "torch" | "onnxruntime" | "tensorrt"
    precision: str  # "fp32" | "fp16" | "int8"
    provider: str  # the device/provider actually running it, e.g. "CPUExecutionProvider"
    input_spec: InputSpec

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027  (most backends hold nothing to release)
        """Release the backend's resources."""

    @property
    def runtime_version(self) -> str:
        return ""

    def describe(self) -> dict[str, str]:
        """Backend, runtime version, provider and precision, for reports and served metadata."""
        return {"backend": self.backend, "runtime_version": self.runtime_version, "provider": self.provider,
                "precision": self.precision}

    def runtime_record(self) -> dict:
        """:meth:`describe` for a record of what was measured: on the CPU also the CPU
        (:func:`ddzoo.device.describe_cpu`; an INT8 artifact's figures can depend on it)."""
        on_cpu = self.provider in ("cpu", "CPUExecutionProvider")
        return {**self.describe(), **({"cpu": describe_cpu()} if on_cpu else {})}

    def predict(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits (N, classes) as a float32 CPU tensor for float32 pixels ``x`` (N, C, H, W) in [0, 1]."""
        x = torch.as_tensor(x)
        if x.dtype != torch.float32:
            raise InvalidArgumentError(f"{self.input_spec.name}: expected float32 pixels, got {x.dtype}")
        expected = tuple(self.input_spec.shape)
        if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise InvalidArgumentError(f"{self.input_spec.name}: expected shape (N, {', '.join(map(str, expected))}), "
                                       f"got {tuple(x.shape)}")
        step = self.input_spec.max_batch or max(len(x), 1)
        outputs = [self._predict(x[i : i + step].contiguous()) for i in range(0, len(x), step)]
        return torch.cat(outputs) if outputs else torch.empty(0)

    @abstractmethod
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of one batch the backend accepts (float32, CPU)."""
