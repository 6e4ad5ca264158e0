"""TorchRunner: a checkpoint's weights in PyTorch (also the source of gradients for verification)."""

from __future__ import annotations

from pathlib import Path

import torch

from ddzoo.device import pick_device
from ddzoo.package import load_checkpoint
from ddzoo.runtime.base import InputSpec, Runner


class TorchRunner(Runner):
    """Runs ``model.safetensors`` + ``config.json`` of a checkpoint or package folder."""

    backend = "torch"
    precision = "fp32"

    def __init__(self, folder: Path | str, device: str | None = None, batch_size: int = 1000):
        self.device = pick_device(device)
        self.model, self.config = load_checkpoint(folder, self.device)
        self.provider = str(self.device)
        self.input_spec = InputSpec("input", tuple(self.config["input_shape"]), max_batch=batch_size)

    @property
    def runtime_version(self) -> str:
        return torch.__version__

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).float().cpu()
