"""Statistics of the records, and how they are printed: accuracy with its Wilson interval, the paired accuracy
difference of two models on the same images, and their text forms.

- Wilson score interval of a proportion (Wilson 1927): sound near 0 and 1, where the normal one is not.
- Paired difference: only images on which the two models disagree carry information (McNemar's test); the
  95 % interval is the normal one of the mean of per-image differences, and :meth:`PairedDrop.p_worse` is the
  exact one-sided McNemar test (sound with a handful of discordant images, where the normal interval is not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ddzoo.errors import CheckpointError, InvalidArgumentError

Z95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default)."""
    if n <= 0:
        raise InvalidArgumentError("an interval needs at least one trial")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, despite rounding
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def percent(fraction: float, digits: int = 2) -> str:
    """``0.925`` → ``92.50 %``."""
    return f"{100 * fraction:.{digits}f} %"


def interval_text(ci95: tuple[float, float] | list[float] | None, digits: int = 1) -> str:
    """A 95 % interval of a fraction in percent, ``[89.9, 92.4]`` (empty without one)."""
    return "" if ci95 is None else f"[{100 * ci95[0]:.{digits}f}, {100 * ci95[1]:.{digits}f}]"


def count(value: Any, what: str) -> int:
    """``value`` if it is a non-negative JSON integer (a record's image count), else a one-line error."""
    if type(value) is not int or value < 0:
        raise CheckpointError(f"{what} must be a non-negative integer, not {str(value)[:60]}")
    return value


def _pair(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CheckpointError(f"{what}: an interval must be two numbers, not {str(value)[:60]}")
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its Wilson 95 % interval and the number of images behind it.

    JSON: ``{"accuracy", "ci95", "images"}``; a verification record keeps its clean accuracy flat, as
    ``images``, ``clean_accuracy`` and ``clean_accuracy_ci95`` (:meth:`to_clean_json`).
    """

    accuracy: float
    ci95: tuple[float, float]
    images: int

    @classmethod
    def of(cls, correct) -> Accuracy:
        """From per-image correctness (a bool tensor)."""
        k, n = int(correct.sum()), len(correct)
        return cls(k / n, wilson_interval(k, n), n)

    @classmethod
    def from_json(cls, data: dict) -> Accuracy:
        return cls(float(data["accuracy"]), _pair(data["ci95"], "accuracy"), count(data["images"], "images"))

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "ci95": list(self.ci95), "images": self.images}

    @classmethod
    def from_clean_json(cls, data: dict) -> Accuracy:
        return cls(float(data["clean_accuracy"]), _pair(data["clean_accuracy_ci95"], "clean accuracy"),
                   count(data["images"], "images"))

    def to_clean_json(self) -> dict:
        return {"images": self.images, "clean_accuracy": self.accuracy, "clean_accuracy_ci95": list(self.ci95)}

    def text(self, digits: int = 1) -> str:
        """``92.5 % [88.0, 95.4] (n=200)``; the interval always with one decimal."""
        return f"{percent(self.accuracy, digits)} {interval_text(self.ci95)} (n={self.images})"

    def fraction_text(self) -> str:
        """As fractions, ``0.9250 [0.880, 0.954]`` (``zoo eval``'s table)."""
        return f"{self.accuracy:.4f} [{self.ci95[0]:.3f}, {self.ci95[1]:.3f}]"


@dataclass(frozen=True)
class PairedDrop:
    """A baseline's accuracy minus another's on the same images, with a 95 % interval for the paired difference;
    ``lost``: images right before and wrong after, ``gained``: the reverse."""

    drop: float
    ci95: tuple[float, float]
    images: int
    lost: int
    gained: int

    @classmethod
    def of(cls, baseline, other) -> PairedDrop:
        """From per-image correctness (bool tensors) of the baseline and the other model."""
        n = len(baseline)
        lost = int((baseline & ~other).sum())
        gained = int((~baseline & other).sum())
        drop = (lost - gained) / n
        half = Z95 * math.sqrt(max(lost + gained - (lost - gained) ** 2 / n, 0.0)) / n
        return cls(drop, (drop - half, drop + half), n, lost, gained)

    @classmethod
    def from_json(cls, data: dict) -> PairedDrop:
        return cls(float(data["drop"]), _pair(data["ci95"], "paired drop"), count(data["images"], "images"),
                   count(data["lost"], "lost"), count(data["gained"], "gained"))

    def to_json(self) -> dict:
        return {"drop": self.drop, "ci95": list(self.ci95), "images": self.images, "lost": self.lost,
                "gained": self.gained}

    def p_worse(self) -> float:
        """Exact one-sided McNemar p-value that the other model is worse: P(at least ``lost`` of the
        ``lost + gained`` discordant images go against it, were each a fair coin); 1 without discordant images."""
        discordant = self.lost + self.gained
        if discordant == 0:
            return 1.0
        return min(1.0, sum(math.comb(discordant, k) for k in range(self.lost, discordant + 1)) / 2 ** discordant)

    def change_text(self) -> str:
        """The change of accuracy in points with its interval, ``-0.05 pt [-0.15, +0.05]`` (never ``-0.00``)."""
        low, high = self.ci95
        change, lowest, highest = (round(-100 * v, 2) + 0.0 for v in (self.drop, high, low))
        return f"{change:+.2f} pt [{lowest:+.2f}, {highest:+.2f}]"
