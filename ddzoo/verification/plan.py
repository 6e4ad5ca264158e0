"""Plan of a verification: its settings, the images, the artifacts and the checkpoint's ε grid anchor."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ddzoo.data import load_split
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.robustness import LINF_ATTACKS, EvalSettings, find_eps_ref
from ddzoo.package import WEIGHTS, package_artifacts, read_config, read_eps_ref

CHECKPOINT_ARTIFACT = WEIGHTS


@dataclass(frozen=True)
class VerifySettings(EvalSettings):
    """How artifacts are attacked (recorded with every result): the evaluation's settings and these."""

    limit: int | None = None
    iterations: tuple[int, ...] = (5, 50)
    bisection_steps: int = 8
    crosscheck: int = 0  # images for the finite-difference cross-check (small inputs only; 0: skip)
    crosscheck_step: float = 1e-2
    crosscheck_iterations: int = 10
    square: int = 100  # images for the query-only Square attack at the l-inf eps_ref (0: skip)
    square_queries: int = 1000
    strong: int = 0  # images for the stronger white-box attacks on the checkpoint (best-of, AutoAttack; 0: skip)
    replay: bool = True  # replay the checkpoint's DeepFool on artifacts (False: every image artifact-in-the-loop)
    replay_tolerance: float | None = None  # if set, a step's f'_l differing more (relative) also leaves the path

    def record(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


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


def resolve_eps_ref(package: Path, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The checkpoint's ε grid anchor: stored with the package (:func:`~ddzoo.package.read_eps_ref`), else found
    now by bisection on the verification images."""
    stored = read_eps_ref(package)
    if stored is not None:
        return {**{a: float(stored[a]) for a in LINF_ATTACKS}, "source": "package config.json"}
    found = {a: find_eps_ref(model, x, y, a, settings=EvalSettings(), device=torch.device("cpu"))
             for a in LINF_ATTACKS}
    return {**found, "source": f"bisection on the {len(x)} verification images (none stored with the package)"}
