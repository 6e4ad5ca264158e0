"""The one-call Python API: ``ddzoo.load``, ``ddzoo.list_models`` and ``ddzoo.verify``.

Example:
    >>> import ddzoo
    >>> model = ddzoo.load("lenet-mnist-dd")                  # nn.Module, eval mode, takes [0, 1] pixels
    >>> runner = ddzoo.load("lenet-mnist-dd", format="int8")  # a Runner on the INT8 ONNX artifact
    >>> logits = runner.predict(images)                       # float32 NCHW in [0, 1] -> (N, 10)
    >>> result = ddzoo.verify("lenet-mnist-dd", limit=200)    # raises VerificationFailedError on a failed gate
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ddzoo.package import FORMATS, check_format, load_checkpoint
from ddzoo.runtime import Runner, choose_artifact, open_runner
from ddzoo.zoo.verify import VerificationResult, verify_model


def _folder(name_or_path: str | Path, format: str | None, offline: bool | None) -> Path:
    """A package folder given as a path, or a model pulled by name (``format`` None: all artifacts but engines)."""
    from ddzoo.zoo import resolve_package

    return resolve_package(name_or_path, formats=[format] if format else None, offline=offline,
                           offline_option="offline=True").folder


def load(name_or_path: str | Path, *, format: str = "torch", device: str | None = None,
         offline: bool | None = None) -> nn.Module | Runner:
    """Load a zoo model in one call, pulling it first if needed.

    Args:
        name_or_path: a published model (``NAME[@REVISION]``, e.g. ``lenet-mnist-dd``) or a package folder.
        format: ``torch`` (the checkpoint as an ``nn.Module``), ``onnx`` / ``fp16`` / ``int8`` (a Runner on
            that ONNX artifact, onnxruntime), or ``trt`` (a Runner on this machine's TensorRT engine).
        device: torch device for ``torch`` (default CPU).
        offline: never touch the network (default: ``ZOO_OFFLINE``).

    Returns:
        ``torch``: an ``nn.Module`` in eval mode taking float32 NCHW pixels in [0, 1] (normalisation inside).
        Otherwise a :class:`~ddzoo.runtime.Runner` (a context manager; ``predict(x) -> logits``).

    Raises:
        InvalidArgumentError: unknown format, or the package lacks it. ModelNotFoundError: no hub holds it.

    Example:
        >>> model = ddzoo.load("lenet-mnist-dd")
        >>> model(torch.rand(1, 1, 28, 28)).argmax(1)
    """
    folder = _folder(name_or_path, check_format(format), offline)
    if format == "torch":
        model, _ = load_checkpoint(folder, device or "cpu")
        return model
    return open_runner(folder / choose_artifact(folder, format=format))


@dataclass(frozen=True)
class PublishedModel:
    """A model the zoo can load here without the network (bundled with ddzoo or in the cache)."""

    name: str
    revision: str
    where: str  # "bundled" | "cache"
    arch: str | None
    dataset: str | None
    recipe: str | None
    accuracy: float | None  # of model.onnx, from its verification record
    accuracy_images: int | None  # the test images behind ``accuracy`` (10,000: CIFAR-10's whole test set)
    rho2: float | None  # DeepFool ρ₂ (50 iterations, [0,1] pixels) of model.onnx
    autoattack: float | None  # AutoAttack ℓ∞ robust accuracy of the checkpoint at the dataset's standard ε
    autoattack_label: str | None  # what ``autoattack`` measured: "AutoAttack ℓ∞ 8/255, n = 500"
    status: str  # "ok", or why the entry is damaged or unreadable
    # per declared threat model ("Linf 8/255"): attack, label, accuracy, ci95, images (not part of the hash)
    robust: dict[str, dict] = field(default_factory=dict, hash=False)


def list_models() -> list[PublishedModel]:
    """The published models available here (bundled and cached), with their verified accuracy and ρ₂.

    The architectures are :func:`ddzoo.models.list_architectures`.
    """
    from ddzoo.zoo import list_models as zoo_list

    return [PublishedModel(**row) for row in zoo_list()]


def verify(name_or_path: str | Path, *, limit: int | None = None, max_accuracy_drop: float = 0.005,
           min_rho_ratio: float = 0.95, max_square_drop: float = 0.02, square: int = 100, crosscheck: int = 0,
           strong: int = 0, robust: int = 1000, max_robust_drop: float = 0.0,
           adversarials: str | Path | None = None, raise_on_failure: bool = True, offline: bool | None = None
           ) -> VerificationResult:
    """Verify every artifact of a package (DeepFool against the artifact itself, Square on ``square`` images;
    ``strong`` images for minimum-norm best-of and AutoAttack on the checkpoint; ``robust`` images for AutoAttack
    at each threat model the package declares, replayed on every artifact) and apply the gate
    (:class:`~ddzoo.verification.Gate`).

    A pulled or bundled model is read-only: its records are returned, not written. Raises
    :class:`~ddzoo.errors.VerificationFailedError` on a failed gate unless ``raise_on_failure`` is False.
    """
    from ddzoo.verification import Gate, VerifySettings

    verified = verify_model(name_or_path, offline=offline, offline_option="offline=True",
                            settings=VerifySettings(limit=limit, crosscheck_images=crosscheck, square_images=square,
                                                    strong_images=strong, robust_images=robust),
                            gate=Gate(max_accuracy_drop=max_accuracy_drop, min_rho_ratio=min_rho_ratio,
                                      max_square_drop=max_square_drop, max_robust_drop=max_robust_drop),
                            adversarials=adversarials)
    if raise_on_failure:
        verified.raise_if_failed()
    return verified


__all__ = ["FORMATS", "PublishedModel", "VerificationResult", "list_models", "load", "verify"]
