"""Published robustness figures to read ours against: RobustBench's CIFAR-10 entries (Croce et al., NeurIPS 2021
Datasets and Benchmarks), AutoAttack (standard version) on the full 10,000-image test set.

The one place these numbers live in the library; ``docs/results.md`` quotes the same entries. Each value is
copied from the entry's ``model_info/<dataset>/<threat model>/<model id>.json`` file in the RobustBench
repository (``clean_acc`` and ``autoattack_acc``, as fractions here).
"""

from __future__ import annotations

from dataclasses import dataclass

ROBUSTBENCH = "https://github.com/RobustBench/robustbench"


@dataclass(frozen=True)
class RobustBenchEntry:
    """One RobustBench leaderboard entry: a model at one threat model.

    Attributes:
        model_id: RobustBench's id (``Wong2020Fast``); one model may have an entry per threat model.
        name: the entry's name as RobustBench shows it.
        citation: authors and year, short.
        architecture: as RobustBench names it.
        defence: how it was trained, in a few words.
        dataset: a ddzoo dataset name (``cifar10``).
        norm: ``Linf`` or ``L2`` (the keys of :data:`ddzoo.eval.threat.STANDARD_EPS`).
        eps: the budget in [0, 1] pixels.
        clean_accuracy: on the full test set, a fraction.
        autoattack_accuracy: AutoAttack robust accuracy on the full test set, a fraction.
        images: how many test images both were measured on.
        parameters_millions: the architecture's parameter count (CIFAR-10 variant), millions, rounded.
    """

    model_id: str
    name: str
    citation: str
    architecture: str
    defence: str
    dataset: str
    norm: str
    eps: float
    clean_accuracy: float
    autoattack_accuracy: float
    images: int = 10_000
    parameters_millions: float | None = None

    @property
    def source(self) -> str:
        """The RobustBench file the numbers come from."""
        return f"{ROBUSTBENCH}/blob/master/model_info/{self.dataset}/{self.norm}/{self.model_id}.json"


ROBUSTBENCH_ANCHORS: tuple[RobustBenchEntry, ...] = (
    RobustBenchEntry("Standard", "Standardly trained model", "RobustBench", "WideResNet-28-10",
                     "none (standard training)", "cifar10", "Linf", 8 / 255, 0.9478, 0.0, parameters_millions=36.5),
    RobustBenchEntry("Standard", "Standardly trained model", "RobustBench", "WideResNet-28-10",
                     "none (standard training)", "cifar10", "L2", 0.5, 0.9478, 0.0, parameters_millions=36.5),
    RobustBenchEntry("Wong2020Fast", "Fast is better than free: Revisiting adversarial training",
                     "Wong, Rice, Kolter 2020", "ResNet-18", "adversarial training (FGSM, random start)", "cifar10",
                     "Linf", 8 / 255, 0.8334, 0.4321, parameters_millions=11.2),
    RobustBenchEntry("Engstrom2019Robustness", "Robustness library", "Engstrom et al. 2019", "ResNet-50",
                     "adversarial training (PGD)", "cifar10", "L2", 0.5, 0.9083, 0.6924, parameters_millions=23.5),
    RobustBenchEntry("Rice2020Overfitting", "Overfitting in adversarially robust deep learning",
                     "Rice, Wong, Kolter 2020", "PreActResNet-18", "adversarial training (PGD, early stopping)",
                     "cifar10", "L2", 0.5, 0.8867, 0.6768, parameters_millions=11.2),
    RobustBenchEntry("Rony2019Decoupling", "Decoupling Direction and Norm for Efficient Gradient-Based L2 "
                     "Adversarial Attacks and Defenses", "Rony et al. 2019", "WideResNet-28-10",
                     "adversarial training (DDN)", "cifar10", "L2", 0.5, 0.8905, 0.6644, parameters_millions=36.5),
    RobustBenchEntry("Wang2023Better_WRN-70-16", "Better Diffusion Models Further Improve Adversarial Training",
                     "Wang et al. 2023", "WideResNet-70-16", "adversarial training + 50M generated images", "cifar10",
                     "Linf", 8 / 255, 0.9325, 0.7069, parameters_millions=267),
    RobustBenchEntry("Wang2023Better_WRN-70-16", "Better Diffusion Models Further Improve Adversarial Training",
                     "Wang et al. 2023", "WideResNet-70-16", "adversarial training + 50M generated images", "cifar10",
                     "L2", 0.5, 0.9554, 0.8486, parameters_millions=267),
)


def robustbench_anchors(dataset: str) -> list[RobustBenchEntry]:
    """The anchors recorded for ``dataset`` (empty where RobustBench has none we quote)."""
    return [entry for entry in ROBUSTBENCH_ANCHORS if entry.dataset == dataset]
