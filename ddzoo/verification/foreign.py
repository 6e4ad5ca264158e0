"""``zoo verify model.onnx``: robustness of any ONNX image classifier, measured on the artifact alone.

No gradients exist for a foreign model, so every figure comes from queries of its own outputs:

- **ρ₂ (decision-based)**: HopSkipJump (Chen, Jordan, Wainwright 2020; foolbox 3.3.4), a minimum-norm l2
  attack that reads only the predicted label; per image the l2 norm of the perturbation it found, 0 for an
  image already misclassified, and each adversarial checked on the artifact.
- **robust accuracy (score-based)** at a given l∞ ε: the Square attack (torchattacks 3.5.1) on its scores.
- **ρ₂ (score-based, float models)**: DeepFool on central differences of the scores (2 queries per pixel and
  step; exact where the model is smooth, blind where it is quantised, so INT8 models skip it).
- **where a differentiable twin exists** (``--twin``: a zoo package or checkpoint of the same model), the
  gradient-assisted DeepFool of :mod:`ddzoo.verification.attack` runs too and the two ρ₂ are compared. A twin
  must be the same network: it must predict the file's class on at least :data:`TWIN_MIN_AGREEMENT` of
  images blended half-and-half from two verified ones (where networks are unsure, so different ones part
  ways), else it is refused before any attack, stating the agreement measured.

Each figure states the model queries it cost per image. The record has the fields of a package's
verification record where they mean the same (images, clean accuracy with its interval, runtime, sha256, gate).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ddzoo.attacks.deepfool import l2_norms
from ddzoo.data import get_dataset_info, load_split
from ddzoo.data.files import load_labelled_images
from ddzoo.device import show_progress
from ddzoo.errors import InvalidArgumentError, shorten
from ddzoo.eval.strong import LogitsModule, label_change_norms, perturbation_stats, square_robust
from ddzoo.fileio import sha256_file
from ddzoo.optional import require
from ddzoo.package import package_versions
from ddzoo.records import GateResult
from ddzoo.runtime import Runner
from ddzoo.runtime.foreign import ForeignOnnxRunner, read_convention
from ddzoo.stats import Accuracy, percent

PROBE_IMAGES = 256
# --twin must predict the file's class on this share of blended images. Measured on 200 blends of the zoo's
# models: a model and its own ONNX or INT8 export agree on 97.5-100 %, two differently trained LeNets (the
# reference, Deep Defense, adversarial and Parseval ones, MNIST and Fashion-MNIST) on 79-87 %; on the test
# images themselves both agree on 96.5-100 %, which cannot tell them apart.
TWIN_MIN_AGREEMENT = 0.95
TWIN_BLENDS = 256


@dataclass(frozen=True)
class ForeignGate:
    """Thresholds the user sets; None: not judged."""

    min_accuracy: float | None = None
    min_robust_accuracy: float | None = None
    min_rho: float | None = None

    def judge(self, clean: Accuracy, square: dict | None, rho: float | None) -> GateResult:
        """The verdict on a clean accuracy, a Square record (``eps`` and its accuracy) and a decision-based ρ₂."""
        reasons = []
        if self.min_accuracy is not None and clean.accuracy < self.min_accuracy:
            reasons.append(f"accuracy {percent(clean.accuracy)} < {percent(self.min_accuracy)}")
        if self.min_robust_accuracy is not None and square and square["accuracy"] < self.min_robust_accuracy:
            reasons.append(f"Square robust accuracy {percent(square['accuracy'])} at eps={square['eps']:g} < "
                           f"{percent(self.min_robust_accuracy)}")
        if self.min_rho is not None and rho is not None and not rho >= self.min_rho:
            reasons.append(f"rho2 {rho:.4f} < {self.min_rho:.4f}")
        return GateResult(not reasons, tuple(reasons), asdict(self))


@dataclass(frozen=True)
class ForeignSettings:
    """What to measure (recorded with the result)."""

    limit: int | None = 100
    hsj_steps: int = 32
    hsj_max_gradient_evals: int = 1000
    square_images: int | None = None  # default: all the verified images
    square_eps: float | None = None  # l∞ budget for Square, [0, 1] pixels (None: skip)
    square_queries: int = 1000
    batch_size: int = 100
    finite_differences: int = 20  # images for DeepFool on central differences (float models only; 0: skip)


class QueryCounter(Runner):
    """A runner that counts the images it is asked about (the model queries an attack spends), with a progress
    bar of them against ``expected`` when a person is watching."""

    def __init__(self, runner: Runner, label: str = "queries", expected: float | None = None):
        self.runner, self.queries = runner, 0
        self.backend, self.precision, self.provider = runner.backend, runner.precision, runner.provider
        self.input_spec = runner.input_spec
        self.bar = tqdm(total=int(expected) if expected else None, desc=label, unit=" queries", unit_scale=True,
                        disable=not show_progress(), leave=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        self.queries += len(x)
        self.bar.update(len(x))
        return self.runner.predict(x)

    def close(self) -> None:
        self.bar.close()


def expected_queries(settings: ForeignSettings, images: int, pixels: int, float_model: bool) -> dict[str, float]:
    """Roughly how many model queries each figure will cost (HopSkipJump's gradient estimates grow as
    100·√step up to the cap; central differences take 2 per pixel and step, about 3 steps; Square stops
    at the first success, about half its budget on average)."""
    steps = range(1, settings.hsj_steps + 1)
    hsj = sum(min(100 * math.sqrt(s), settings.hsj_max_gradient_evals) + 30 for s in steps)
    estimate = {"decision_based": images * hsj}
    if settings.square_eps is not None:
        estimate["square"] = (settings.square_images or images) * settings.square_queries / 2
    if settings.finite_differences and float_model:
        estimate["finite_difference"] = min(settings.finite_differences, images) * 2 * pixels * 3
    return estimate


def hop_skip_jump_norms(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
                        steps: int, max_gradient_evals: int, batch_size: int = 100) -> torch.Tensor:
    """Per image: the l2 norm of HopSkipJump's adversarial (checked on ``predict``), 0 where already wrong,
    ∞ where it failed."""
    fb = require("foolbox", "the HopSkipJump attack", extra="audit")
    model = fb.PyTorchModel(LogitsModule(predict).eval(), bounds=(0.0, 1.0))
    attack = fb.attacks.HopSkipJumpAttack(steps=steps, max_gradient_eval_steps=max_gradient_evals)
    norms = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        wrong = predict(xb).argmax(1) != yb
        adversarial = xb.clone()
        attackable = torch.nonzero(~wrong).squeeze(1)
        if attackable.numel():  # HopSkipJump starts from a correctly classified image
            adversarial[attackable] = attack(model, xb[attackable], fb.criteria.Misclassification(yb[attackable]),
                                             epsilons=None)[1]
        norms.append(label_change_norms(predict, xb, yb, adversarial, wrong))
    return torch.cat(norms)


def verify_onnx(path: Path | str, *, dataset: str | None = None, images: Path | str | None = None,
                settings: ForeignSettings = ForeignSettings(),
                gate: ForeignGate = ForeignGate(), layout: str | None = None, scale: float | None = None,
                mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                output: str | None = None, channels: str | None = None, twin: nn.Module | None = None,
                plot: Path | str | None = None) -> dict:
    """Verify a foreign ONNX classifier on the test images of ``dataset`` (or the labelled ``images``: an .npz
    or a folder of class folders, :func:`~ddzoo.data.files.load_labelled_images`); returns its record.

    ``twin`` (a torch module taking [0, 1] NCHW pixels, e.g. a zoo checkpoint of the same model) adds the
    gradient-assisted DeepFool ρ₂ on the same images and its agreement with the decision-based one. ``plot``:
    write the per-image perturbations and accuracy against the l2 budget there (PNG).
    """
    path = Path(path)
    try:
        found = path.is_file()
    except OSError:  # e.g. a name too long for the filesystem
        found = False
    if not found:
        raise InvalidArgumentError(f"{path}: no such file; give the path of an .onnx model")
    if dataset is None and images is None:
        raise InvalidArgumentError("say what to verify on: --dataset (cifar10, mnist, fashion-mnist) or --images")
    if images is not None:
        x, y = load_labelled_images(images, settings.limit)
        probe = (x[:PROBE_IMAGES], y[:PROBE_IMAGES])
    else:
        x, y = load_split(dataset, "test").tensors(limit=settings.limit)
        probe = load_split(dataset, "train").tensors(limit=PROBE_IMAGES)
    image_shape = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
    if dataset is not None:
        info = get_dataset_info(dataset)
        if tuple(info.image_shape) != image_shape:
            raise InvalidArgumentError(f"the images are {list(image_shape)}, {dataset}'s {list(info.image_shape)}")
        classes, data_mean, data_std = len(info.classes), info.mean, info.std
    else:
        classes = None
        data_mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
        data_std = tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    convention, probed = read_convention(path, image_shape, classes, probe=probe, dataset_mean=data_mean,
                                         dataset_std=data_std, layout=layout, scale=scale, mean=mean, std=std,
                                         output=output, channels=channels,
                                         images_label=f"{dataset}'s images" if images is None else "the images")
    started = time.perf_counter()
    runner = ForeignOnnxRunner(path, image_shape, convention)
    agreement = None if twin is None else check_twin(twin, runner, x, path.name)
    clean = Accuracy.of(runner.predict(x).argmax(1) == y)
    record: dict = {"artifact": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "dataset": dataset, "split": "test" if images is None else str(images), **clean.to_clean_json(),
                    "input": {**convention.describe(), **probed}, "runtime": runner.runtime_record(),
                    "versions": package_versions(), "settings": asdict(settings)}
    expected = expected_queries(settings, len(x), x[0].numel(), runner.precision != "int8")
    record["estimate"] = _announce(runner, x, expected)
    counter = QueryCounter(runner, "HopSkipJump", expected["decision_based"])
    t0 = time.perf_counter()
    norms = hop_skip_jump_norms(counter, x, y, steps=settings.hsj_steps,
                                max_gradient_evals=settings.hsj_max_gradient_evals, batch_size=settings.batch_size)
    record["decision_based"] = {"attack": f"HopSkipJump (foolbox 3.3.4, {settings.hsj_steps} steps, l2)",
                                **perturbation_stats(norms, x), "queries_per_image": counter.queries / len(x),
                                "seconds": time.perf_counter() - t0}
    counter.close()
    if settings.square_eps is not None:
        n = settings.square_images or len(x)
        counter = QueryCounter(runner, "Square", expected["square"])
        t0 = time.perf_counter()
        robust = square_robust(counter, x[:n], y[:n], norm="Linf", eps=settings.square_eps,
                               queries=settings.square_queries, batch_size=settings.batch_size)
        record["square"] = {"eps": settings.square_eps, "norm": "Linf", **Accuracy.of(robust).to_json(),
                            "queries": settings.square_queries, "queries_per_image": counter.queries / n,
                            "seconds": time.perf_counter() - t0,
                            "method": "Square attack (torchattacks 3.5.1), the model's own scores only"}
        counter.close()
    per_image = {"HopSkipJump": norms}
    if settings.finite_differences and runner.precision != "int8":
        record["finite_difference"], per_image["DeepFool, central differences"] = _finite_difference_record(
            runner, x, y, settings)
    if twin is not None:
        record["gradient_twin"], per_image["DeepFool, twin's gradients"] = _twin_record(twin, runner, x, y, norms)
        record["gradient_twin"]["agreement"] = agreement
    record["gate"] = gate.judge(clean, record.get("square"), record["decision_based"]["rho2"]).to_json()
    record["timings"] = {"total_s": time.perf_counter() - started}
    record["verified_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if plot is not None:
        from ddzoo.verification.plot import plot_query_only

        plot_query_only(record, per_image, Path(plot))
    return record


def check_twin(twin: nn.Module, runner: Runner, x: torch.Tensor, name: str) -> dict:
    """How often ``twin`` predicts the class ``runner`` does, on the images ``x`` and on at least
    :data:`TWIN_BLENDS` blends of two of them; :class:`InvalidArgumentError` stating it when the blends' agreement
    is under :data:`TWIN_MIN_AGREEMENT` (a different network: its gradients would not describe this model)."""
    shifts = math.ceil(TWIN_BLENDS / len(x))
    blends = torch.cat([0.5 * x + 0.5 * x.roll(s, 0) for s in range(1, shifts + 1)])[: max(TWIN_BLENDS, len(x))]
    try:
        with torch.no_grad():
            twin_labels = [twin(images).argmax(1) for images in (x, blends)]
    except RuntimeError as err:  # e.g. a twin of another input shape
        raise InvalidArgumentError(f"--twin cannot classify these {list(x.shape[1:])} images "
                                   f"({shorten((str(err).splitlines() or [''])[0], 200)}); give the package or "
                                   f"checkpoint {name} was exported from") from None
    same = [(labels == runner.predict(images).argmax(1)).float().mean().item()
            for labels, images in zip(twin_labels, (x, blends), strict=True)]
    agreement = {"images": len(x), "agreement": same[0], "blends": len(blends), "blend_agreement": same[1],
                 "min_blend_agreement": TWIN_MIN_AGREEMENT}
    if same[1] < TWIN_MIN_AGREEMENT:
        raise InvalidArgumentError(
            f"--twin is not the same network as {name}: they predict the same class on {100 * same[1]:.1f} % of "
            f"{len(blends)} blended images ({100 * same[0]:.1f} % of the {len(x)} verified ones), and a twin must "
            f"agree on at least {100 * TWIN_MIN_AGREEMENT:.0f} % of the blends; give the package or checkpoint "
            f"{name} was exported from, or leave out --twin")
    return agreement


def _duration(seconds: float) -> str:
    """``31 s``, ``2.5 min`` or ``1.2 h`` (never ``0 s``)."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def _announce(runner: Runner, x: torch.Tensor, expected: dict[str, float]) -> dict:
    """Time one batch of queries and say on stderr how long the whole verification should take."""
    batch = x[:100]
    t0 = time.perf_counter()
    runner.predict(batch)
    rate = len(batch) / max(time.perf_counter() - t0, 1e-9)
    total = sum(expected.values())
    seconds = total / rate
    print(f"zoo verify: about {total:,.0f} model queries at ~{rate:,.0f}/s: roughly {_duration(seconds)} "
          "(--limit, --decision-steps and --finite-differences trade time for precision)", file=sys.stderr)
    return {"queries": total, "queries_per_s": rate, "seconds": seconds,
            **{f"{name}_queries": value for name, value in expected.items()}}


def _finite_difference_record(runner: ForeignOnnxRunner, x: torch.Tensor, y: torch.Tensor,
                              settings: ForeignSettings) -> tuple[dict, torch.Tensor]:
    """DeepFool on central differences of the model's scores: exact for a smooth float model, blind on a
    quantised one (piecewise constant), so it runs on float models only."""
    from ddzoo.verification.attack import finite_difference_deepfool

    sample = x[: settings.finite_differences]
    counter = QueryCounter(runner, "central differences", len(sample) * 2 * sample[0].numel() * 3)
    t0 = time.perf_counter()
    result = finite_difference_deepfool(counter, sample, max_iter=10, num_candidates=10)
    norms = torch.where(result.fooled, l2_norms(result.perturbation), torch.full((len(sample),), math.inf))
    counter.close()
    return {"attack": "DeepFool (10 it, K = 10) on central differences of the scores, on the model's boundary",
            **perturbation_stats(norms, sample), "queries_per_image": counter.queries / len(sample),
            "seconds": time.perf_counter() - t0}, _zero_where_wrong(norms, result.start_labels, y[: len(sample)])


def _twin_record(twin: nn.Module, runner: ForeignOnnxRunner, x: torch.Tensor, y: torch.Tensor,
                 decision_norms: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Gradient-assisted DeepFool on the artifact (gradients from the twin), against the decision-based norms."""
    from ddzoo.verification.attack import artifact_deepfool

    result = artifact_deepfool(twin, runner, x, max_iter=50, num_candidates=10)
    gradient = torch.where(result.fooled, l2_norms(result.perturbation), torch.full((len(x),), math.inf))
    both = torch.isfinite(gradient) & torch.isfinite(decision_norms) & (decision_norms > 0)
    summary = perturbation_stats(gradient, x)
    ratio = (decision_norms[both] / gradient[both]).median().item() if both.any() else math.nan
    return ({"attack": "DeepFool (50 it, K = 10) with the twin's gradients, on the artifact's boundary",
             **summary, "median_decision_over_gradient": ratio, "images_compared": int(both.sum())},
            _zero_where_wrong(gradient, result.start_labels, y))


def _zero_where_wrong(norms: torch.Tensor, predicted: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image robustness to the true label: an image the model already gets wrong needs no perturbation."""
    return torch.where(predicted == y, norms, torch.zeros_like(norms))
