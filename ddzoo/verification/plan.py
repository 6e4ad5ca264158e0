"""Plan of a verification: its settings, the images, the artifacts and the ε_ref of its grid."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ddzoo.data import load_split
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.eps_ref import resolve_eps_ref
from ddzoo.eval.robustness import EvalSettings
from ddzoo.package import package_artifacts, read_config
from ddzoo.records import DEEPFOOL_ITERATIONS

# Image counts whose JSON names (in every record's ``settings``) predate the ``_images`` suffix.
_JSON_NAMES = {"crosscheck_images": "crosscheck", "square_images": "square", "strong_images": "strong"}


@dataclass(frozen=True)
class VerifySettings(EvalSettings):
    """How artifacts are attacked (recorded with every result): the evaluation's settings and these."""

    limit: int | None = None
    iterations: tuple[int, ...] = DEEPFOOL_ITERATIONS  # without HEADLINE_ITERATIONS, records have no headline ρ₂
    bisection_steps: int = 8
    crosscheck_images: int = 0  # for the finite-difference cross-check (small inputs only; 0: skip)
    crosscheck_step: float = 1e-2
    crosscheck_iterations: int = 10
    square_images: int = 100  # for the query-only Square attack at the l-inf eps_ref (0: skip)
    square_queries: int = 1000
    strong_images: int = 0  # for the stronger white-box attacks on the checkpoint (best-of, AutoAttack; 0: skip)
    robust_images: int = 1000  # AutoAttack per declared threat model, replayed on artifacts, and Square (0: skip)
    replay: bool = True  # replay the checkpoint's DeepFool on artifacts (False: every image artifact-in-the-loop)
    replay_tolerance: float | None = None  # if set, a step's f'_l differing more (relative) also leaves the path

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.limit is not None and self.limit < 1:
            raise InvalidArgumentError(f"limit = {self.limit}: verify on at least one image (or leave it out)")
        counts = ("bisection_steps", "crosscheck_images", "crosscheck_iterations", "square_images", "square_queries",
                  "strong_images", "robust_images")
        negative = [f"{name} = {getattr(self, name)}" for name in counts if getattr(self, name) < 0]
        if negative or not self.iterations or min(self.iterations) < 1:
            raise InvalidArgumentError(f"{', '.join(negative) or f'iterations = {self.iterations}'}: counts must be "
                                       "0 or more and DeepFool's iteration budgets at least 1")

    def record(self) -> dict:
        """The settings as every record states them (JSON names)."""
        return {_JSON_NAMES.get(key, key): list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


@dataclass
class Plan:
    """What one verification covers: the package, its config, the artifacts and the test images."""

    package: Path
    config: dict
    artifacts: list[str]  # the ones to verify
    present: list[str]  # every artifact the package holds
    x: torch.Tensor
    y: torch.Tensor


def make_plan(package: Path | str, artifacts: list[str] | None, settings: VerifySettings) -> Plan:
    """Check the requested artifacts exist and load the test images (the first ``settings.limit``)."""
    package = Path(package)
    config = read_config(package)
    present = package_artifacts(package)
    names = artifacts or present
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidArgumentError(f"{package}: no artifact {missing}; choose from {present}")
    x, y = load_split(config["dataset"], "test").tensors(limit=settings.limit)
    return Plan(package, config, list(names), present, x, y)


def eps_ref_record(package: Path, x: torch.Tensor, y: torch.Tensor) -> dict:
    """ε_ref (:func:`~ddzoo.eval.eps_ref.resolve_eps_ref`) as records state it: its values and where it came
    from."""
    values, stored_in = resolve_eps_ref(package, x, y)
    if stored_in is None:
        source = f"bisection on the {len(x)} verification images (none stored with the package)"
    else:
        source = "package config.json" if stored_in == package else f"stored with its reference {stored_in}"
    return {**values, "source": source}
