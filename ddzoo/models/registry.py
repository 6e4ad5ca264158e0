"""The model registry: typed metadata per architecture, duplicate names rejected.

Modelled on torchvision's ``register_model`` and timm's ``list_models`` / ``create_model``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ddzoo.errors import DuplicateNameError, InvalidArgumentError, UnknownNameError


@dataclass(frozen=True)
class ModelSpec:
    """An architecture: how to build its body and what it accepts.

    Attributes:
        name: registry name (``lenet``, ``resnet20`` ...).
        build: ``build(num_classes) -> nn.Module`` taking normalised NCHW input.
        input_shape: (C, H, W) the architecture is defined for.
        datasets: datasets it was designed for (any dataset with ``input_shape`` works).
        num_params: parameter count for 10 classes, checked against the real model by the tests.
        reference: the paper that defines it.
        channels_last: trains faster on CPUs with ``torch.channels_last`` weights and inputs (measured per
            architecture by ``bench/train_step.py``; single-channel and tiny models gain nothing).
    """

    name: str
    build: Callable[[int], nn.Module]
    input_shape: tuple[int, int, int]
    datasets: tuple[str, ...]
    num_params: int
    reference: str
    channels_last: bool = False


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry; a second spec with the same name raises :class:`DuplicateNameError`."""
    if spec.name in _REGISTRY:
        raise DuplicateNameError(f"model {spec.name!r} is already registered; pick another name")
    _REGISTRY[spec.name] = spec
    return spec


def list_architectures() -> list[str]:
    """Registered architecture names, sorted (the published models are :func:`ddzoo.list_models`)."""
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; raises :class:`UnknownNameError` listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("model", name, list_architectures()) from None


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``: the first layer of every zoo model, so models take [0,1] pixels."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """``net(normalize(x))``: a registered body behind its dataset's normalisation layer.

    Attack ``model`` for robustness in [0,1] pixel space, ``model.net`` on ``model.normalize(x)`` for the
    normalised space.
    """

    def __init__(self, arch: str, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.arch = arch
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def create_model(name: str, dataset: str, *, seed: int | None = None) -> Classifier:
    """Build architecture ``name`` for ``dataset`` (its classes, shape and normalisation).

    Args:
        name: a registered architecture (see :func:`list_architectures`).
        dataset: a dataset name (see :func:`ddzoo.data.list_datasets`).
        seed: if given, the weights are initialised from this seed.

    Raises:
        UnknownNameError: unknown model or dataset name.
        InvalidArgumentError: the dataset's image shape does not fit the architecture.

    Example:
        >>> model = create_model("lenet", "mnist")
    """
    from ddzoo.data import get_dataset_info

    spec = get_model_spec(name)
    info = get_dataset_info(dataset)
    if info.image_shape != spec.input_shape:
        raise InvalidArgumentError(
            f"{name} takes {spec.input_shape} images but {dataset} has {info.image_shape}; "
            f"{name} is meant for {', '.join(spec.datasets)}")
    if seed is not None:
        torch.manual_seed(seed)
    return Classifier(name, spec.build(info.num_classes), info.mean, info.std)


def memory_format_for(arch: str, device: torch.device) -> torch.memory_format:
    """The layout to train ``arch`` in on ``device``: channels-last where its spec measured a gain on CPUs."""
    fast = get_model_spec(arch).channels_last and device.type == "cpu"
    return torch.channels_last if fast else torch.contiguous_format


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
