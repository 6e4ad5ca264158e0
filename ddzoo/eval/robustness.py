"""Robustness evaluation: clean accuracy, DeepFool ρ₂, FGS / BIM accuracy on an ε grid.

ρ₂ = mean over all images of ||r(x)||₂ / ||x||₂, DeepFool started from the predicted label (DeepFool paper,
eq. 15). It is reported in two spaces: [0,1] pixels (what a deployed model takes) and the model's normalised
input ``(x - mean) / std`` (the space of the Deep Defense paper's numbers), at 5 and 50 iterations, plus a
box-constrained attack (x + r kept in [0,1]) with its success rate and ρ₂ over the images it fooled.
The ε grid of FGS / BIM is {0.2, 0.5, 1.0}·ε_ref, ε_ref being the ε at which the *reference* model's
accuracy falls to 50 % (bisection; Yan et al. 2018, sec. 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import torch
from tqdm.auto import tqdm

from ddzoo.attacks import attack_copy, bim
from ddzoo.attacks.deepfool import SCREEN, bf16_is_fast, deepfool_budgets, l2_norms
from ddzoo.attacks.linf import fgs
from ddzoo.device import show_progress
from ddzoo.errors import InvalidArgumentError
from ddzoo.models import Classifier
from ddzoo.models.inference import predict_labels
from ddzoo.records import BOX_CONSTRAINED, DEEPFOOL_ITERATIONS, DeepFoolSummary
from ddzoo.stats import Accuracy

EPS_FACTORS = (0.2, 0.5, 1.0)
LINF_ATTACKS: dict[str, Callable] = {"fgs": fgs, "bim": bim}


class RobustnessRecord(TypedDict, total=False):
    """What ``zoo eval`` (a checkpoint) and ``zoo verify`` (each artifact) both report, measured by the same
    functions: :class:`~ddzoo.stats.Accuracy`, :class:`~ddzoo.records.DeepFoolSummary` per iteration budget,
    :func:`linf_grid`.
    Each adds its own fields (eval: the normalised space; verify: runtime, sha256, agreement, gate)."""

    images: int
    clean_accuracy: float
    clean_accuracy_ci95: list[float]
    deepfool: dict  # {"5": summary, "50": summary, "box_constrained": summary + max_iter, ...}
    fgs: dict  # {"eps": [...], "accuracy": [...]} at EPS_FACTORS·ε_ref
    bim: dict
    eps_ref: dict


def default_screen() -> float:
    """DeepFool's candidate screen where bfloat16 is native on the CPU (:data:`~ddzoo.attacks.deepfool.SCREEN`:
    the same decisions and steps as float32, faster), else 0 (off)."""
    return SCREEN if bf16_is_fast(torch.device("cpu")) else 0.0


@dataclass(frozen=True)
class EvalSettings:
    """How the attacks run (recorded with the metrics)."""

    num_candidates: int = 10
    overshoot: float = 0.02
    batch_size: int = 500
    bim_steps: int = 10
    screen: float = field(default_factory=default_screen)  # DeepFool's bfloat16 candidate screen (0: off)

    def __post_init__(self) -> None:
        for name, least in (("num_candidates", 2), ("batch_size", 1), ("bim_steps", 1)):
            if getattr(self, name) < least:
                raise InvalidArgumentError(f"{name} = {getattr(self, name)}: it must be at least {least}")
        if not (self.overshoot >= 0 and self.screen >= 0):
            raise InvalidArgumentError(f"overshoot = {self.overshoot}, screen = {self.screen}: both must be 0 or more")


def chunks(size: int, label: str, *tensors: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Aligned slices of ``size`` rows of every tensor, with a progress bar named ``label``."""
    starts = range(0, len(tensors[0]), size)
    for i in tqdm(starts, desc=label, disable=not show_progress(), leave=False):
        yield tuple(t[i : i + size] for t in tensors)


def deepfool_norms(model: torch.nn.Module, x: torch.Tensor, *, budgets: Sequence[int], settings: EvalSettings,
                   bounds: tuple[float, float] | None = None, device: torch.device
                   ) -> dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per iteration budget, per image: ``||r||₂``, fooled flag and iterations of DeepFool started from the
    predicted label (all budgets from one sweep: :func:`~ddzoo.attacks.deepfool.deepfool_budgets`)."""
    parts: dict[int, list[tuple[torch.Tensor, ...]]] = {budget: [] for budget in budgets}
    for (xb,) in chunks(settings.batch_size, f"deepfool/{'+'.join(map(str, sorted(parts)))}", x):
        results = deepfool_budgets(model, xb.to(device), parts, overshoot=settings.overshoot, screen=settings.screen,
                                   num_candidates=settings.num_candidates, bounds=bounds)
        for budget, result in results.items():
            parts[budget].append((l2_norms(result.perturbation).cpu(), result.fooled.cpu(), result.iterations.cpu()))
    return {budget: tuple(torch.cat(column) for column in zip(*rows, strict=True)) for budget, rows in parts.items()}


def deepfool_rho(model: Classifier, x: torch.Tensor, *, space: str, max_iter: int, settings: EvalSettings,
                 device: torch.device) -> dict[str, float]:
    """The :class:`~ddzoo.records.DeepFoolSummary` (as JSON) of unconstrained DeepFool on ``x`` in ``space``:
    ``pixel`` ([0,1]) or ``normalized``."""
    target, inputs = (model, x) if space == "pixel" else (model.net, model.normalize(x.to(model.normalize.mean.device)))
    inputs = inputs.detach().cpu()
    norms, fooled, steps = deepfool_norms(attack_copy(target).to(device), inputs, budgets=(max_iter,),
                                          settings=settings, device=device)[max_iter]
    return DeepFoolSummary.measure(norms, l2_norms(inputs), fooled, steps).to_json()


def linf_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float, *,
                  settings: EvalSettings, device: torch.device,
                  oracle: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Accuracy under FGS or BIM at ``eps`` (l∞, [0,1] pixels); ``oracle`` (default ``model``) gives the logits
    that decide it, e.g. a deployed artifact attacked with its reference weights' gradients."""
    correct = 0
    for xb, yb in chunks(settings.batch_size, f"{attack}@{eps:.3g}", x, y):
        xb, yb = xb.to(device), yb.to(device)
        kwargs = {"steps": settings.bim_steps} if attack == "bim" else {}
        adv = LINF_ATTACKS[attack](model, xb, yb, eps, **kwargs)
        with torch.no_grad():
            logits = model(adv) if oracle is None else oracle(adv).to(device)
        correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x)


def linf_grid(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps_ref: dict[str, float], *,
              settings: EvalSettings, device: torch.device,
              oracle: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, dict]:
    """FGS and BIM accuracy at ``EPS_FACTORS``·ε_ref of each (``oracle``: see :func:`linf_accuracy`)."""
    grids = {}
    for attack, eps in linf_eps(eps_ref).items():
        grids[attack] = {"eps": eps, "accuracy": [linf_accuracy(model, x, y, attack, e, settings=settings,
                                                                device=device, oracle=oracle) for e in eps]}
    return grids


def linf_eps(eps_ref: dict[str, float]) -> dict[str, list[float]]:
    """The ε grid of each l∞ attack: ``EPS_FACTORS``·ε_ref."""
    return {attack: [factor * eps_ref[attack] for factor in EPS_FACTORS] for attack in LINF_ATTACKS}


def linf_adversarials(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps_ref: dict[str, float], *,
                      settings: EvalSettings) -> dict[str, list[torch.Tensor]]:
    """The FGS and BIM adversarial examples of one batch at every ε of the grid: they depend on ``model``'s
    gradients alone, so any number of artifacts can be judged on them with forward passes."""
    return {attack: [LINF_ATTACKS[attack](model, x, y, e, **({"steps": settings.bim_steps} if attack == "bim" else {}))
                     for e in eps] for attack, eps in linf_eps(eps_ref).items()}


def find_eps_ref(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str, *,
                 settings: EvalSettings, device: torch.device, tolerance: float = 0.005,
                 max_steps: int = 14, subset: int = 1000) -> float:
    """The ε at which ``model``'s accuracy under ``attack`` on ``(x, y)`` is 50 % (within ``tolerance``).

    Bisection on [0, 1]; on more than ``2·subset`` images, bisection on the first ``subset`` gives a first
    guess, and regula falsi (Illinois) on log ε finishes on all of them: about 5 passes over the images
    instead of 12, with the same stopping rule.
    """
    def excess(eps: float) -> float:
        return linf_accuracy(model, x, y, attack, eps, settings=settings, device=device) - 0.5

    if len(x) > 2 * subset:
        guess = find_eps_ref(model, x[:subset], y[:subset], attack, settings=settings, device=device,
                             tolerance=2 * tolerance, max_steps=max_steps, subset=subset)
        found = _regula_falsi(excess, guess, tolerance, max_steps) if guess > 0 else None
        if found is not None:
            return found
    low, high = 0.0, 1.0
    for _ in range(max_steps):
        mid = (low + high) / 2
        value = excess(mid)
        if abs(value) <= tolerance:
            return mid
        low, high = (mid, high) if value > 0 else (low, mid)
    return (low + high) / 2


def _regula_falsi(excess: Callable[[float], float], guess: float, tolerance: float, max_steps: int,
                  factor: float = 1.25) -> float | None:
    """A root of the decreasing ``excess`` near ``guess`` by Illinois regula falsi on log ε, or None when
    ``max_steps`` evaluations do not bracket and reach it."""
    a, fa = guess, excess(guess)
    if abs(fa) <= tolerance:
        return a
    b = a * factor if fa > 0 else a / factor
    fb = excess(b)
    steps = 2
    while fa * fb > 0 and steps < max_steps and b < 1:  # walk outward until the sign changes
        a, fa = b, fb
        b = min(a * factor, 1.0) if fa > 0 else a / factor
        fb, steps = excess(b), steps + 1
    if fa * fb > 0:
        return None
    for _ in range(steps, max_steps):
        if abs(fb) <= tolerance:
            return b
        log_a, log_b = math.log(a), math.log(b)
        c = math.exp(log_b - fb * (log_b - log_a) / (fb - fa))
        fc = excess(c)
        if fc * fb < 0:
            a, fa = b, fb
        else:
            fa /= 2  # Illinois: keeps the stale end from stalling the interpolation
        b, fb = c, fc
    return b if abs(fb) <= tolerance else None


def _uniform_std(model: Classifier) -> bool:
    std = model.normalize.std.flatten()
    return bool(torch.all(std == std[0]))


def evaluate_robustness(model: Classifier, x: torch.Tensor, y: torch.Tensor, eps_ref: dict[str, float], *,
                        settings: EvalSettings = EvalSettings(), device: torch.device | None = None
                        ) -> RobustnessRecord:
    """All robustness metrics of ``model`` on ``(x, y)``: a :class:`RobustnessRecord` whose ``deepfool`` holds
    ``pixel`` and ``normalized`` spaces.

    Args:
        model: a zoo :class:`Classifier` (takes [0,1] pixels).
        x, y: images in [0, 1] and labels.
        eps_ref: ``{"fgs": ε, "bim": ε}`` of the reference model; the grid is ``EPS_FACTORS``·ε_ref.
        settings: attack settings.
        device: where to run; default the model's device.

    Returns:
        a JSON-ready dict (see docs/results.md for the fields).
    """
    device = device or next(model.parameters()).device
    frozen = attack_copy(model).to(device)
    frozen_net = attack_copy(model.net).to(device)
    metrics: dict = Accuracy.of(predict_labels(frozen, x, device=device) == y).to_clean_json()
    deepfool_metrics: dict = {"pixel": {}, "normalized": {}}
    z = model.normalize(x.to(model.normalize.mean.device)).cpu()
    x_norms, z_norms = l2_norms(x), l2_norms(z)
    pixel = deepfool_norms(frozen, x, budgets=DEEPFOOL_ITERATIONS, settings=settings, device=device)
    if _uniform_std(model):
        # DeepFool is equivariant under z = (x - μ)/σ with a single σ: r_z = r_x/σ exactly, so the
        # normalised-space run would repeat this one.
        sigma = model.normalize.std.flatten()[0].item()
        normalized = {budget: (norms / sigma, fooled, steps) for budget, (norms, fooled, steps) in pixel.items()}
    else:
        normalized = deepfool_norms(frozen_net, z, budgets=DEEPFOOL_ITERATIONS, settings=settings, device=device)
    for iterations in DEEPFOOL_ITERATIONS:
        for space, runs, input_norms in (("pixel", pixel, x_norms), ("normalized", normalized, z_norms)):
            norms, fooled, steps = runs[iterations]
            deepfool_metrics[space][str(iterations)] = DeepFoolSummary.measure(norms, input_norms, fooled,
                                                                               steps).to_json()
    iterations = max(DEEPFOOL_ITERATIONS)
    norms, fooled, steps = deepfool_norms(frozen, x, budgets=(iterations,), settings=settings, bounds=(0.0, 1.0),
                                          device=device)[iterations]
    deepfool_metrics[BOX_CONSTRAINED] = DeepFoolSummary.measure(norms, x_norms, fooled, steps,
                                                                max_iter=iterations).to_json()
    metrics["deepfool"] = deepfool_metrics
    metrics.update(linf_grid(frozen, x, y, eps_ref, settings=settings, device=device))
    metrics["eps_ref"] = dict(eps_ref)
    metrics["settings"] = {"num_candidates": settings.num_candidates, "overshoot": settings.overshoot,
                           "bim_steps": settings.bim_steps, "screen": settings.screen, "space_pixel": "[0,1]",
                           "space_normalized": "(x - mean) / std"}
    return metrics
