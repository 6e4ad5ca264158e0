"""The gate: does an artifact hold up as well as its checkpoint on the same images? Also the check ``zoo publish``
and the service make before using an artifact. (The paired comparison it rests on: :class:`ddzoo.stats.PairedDrop`.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ddzoo.errors import VerificationFailedError
from ddzoo.package import WEIGHTS, verification_status
from ddzoo.records import ArtifactRecord, GateResult
from ddzoo.verification.robust import robust_reasons


@dataclass(frozen=True)
class Gate:
    """Pass when the verified images show the artifact as good as its checkpoint.

    - Accuracy: the upper end of the 95 % interval of the paired accuracy drop (same images) is at most
      ``max_accuracy_drop``, so a small sample cannot pass a worse artifact (verify on more images instead).
    - ρ₂ at least ``min_rho_ratio`` times the checkpoint's.
    - When the query-only Square attack ran: the artifact's robust accuracy under it is not significantly
      (95 %) more than ``max_square_drop`` below the checkpoint's, so an artifact whose gradient-assisted ρ₂
      looks fine while a black-box attack finds it weaker fails.
    - For each threat model the package declares: the artifact's robust accuracy (the checkpoint's AutoAttack
      adversarials replayed, and Square on the artifact alone) is not significantly (95 %, paired) more than
      ``max_robust_drop`` below the checkpoint's.
    """

    max_accuracy_drop: float = 0.005
    min_rho_ratio: float = 0.95
    max_square_drop: float = 0.02
    max_robust_drop: float = 0.0

    def judge(self, record: ArtifactRecord, baseline: ArtifactRecord, declared: tuple[str, ...] = ()) -> GateResult:
        """The verdict on ``record`` (its paired drop, ρ₂ ratio and Square drop filled in) against ``baseline``;
        ``declared``: the keys of the package's threat models, each of which needs robust figures."""
        paired = record.accuracy_drop
        drop = paired.drop if paired else baseline.clean.accuracy - record.clean.accuracy
        upper = paired.ci95[1] if paired else drop
        ratio = record.rho2_ratio
        reasons = []
        if upper > self.max_accuracy_drop + 1e-9:
            reason = f"accuracy drop {100 * drop:+.2f} pt"
            if paired and upper > drop + 1e-9:
                reason += f" (up to {100 * upper:.2f} pt at 95 %, n={paired.images})"
            reason += f" > {100 * self.max_accuracy_drop:.2f} pt"
            if drop <= self.max_accuracy_drop + 1e-9:
                reason += ": too few images to tell, verify on more (--limit)"
            reasons.append(reason)
        if not ratio >= self.min_rho_ratio:
            reasons.append(f"rho2 ratio {ratio:.3f} < {self.min_rho_ratio:.3f}")
        square = record.square_drop
        if square and square.ci95[0] > self.max_square_drop + 1e-9:
            reasons.append(f"Square robust accuracy {100 * square.drop:.1f} pt below the checkpoint's "
                           f"(at least {100 * square.ci95[0]:.1f} pt at 95 %, n={square.images}) > "
                           f"{100 * self.max_square_drop:.1f} pt")
        reasons += robust_reasons(record.robust, self.max_robust_drop)
        unmeasured = [key for key in declared if key not in (record.robust or {})]
        if unmeasured:
            reasons.append(f"no robust accuracy at the declared threat model(s) {', '.join(unmeasured)}: verify with "
                           "--robust N (N > 0)")
        return GateResult(not reasons, tuple(reasons), {"accuracy_drop": drop, "accuracy_drop_upper95": upper,
                                                        "rho2_ratio": ratio, **asdict(self)})


def require_passing(package: Path | str, artifacts: list[str] | None = None) -> None:
    """Raise :class:`VerificationFailedError` unless every artifact has a passing record for its bytes."""
    status = verification_status(package)
    names = artifacts or [n for n in status if n != WEIGHTS]
    bad = {n: status.get(n, "missing") for n in names if status.get(n) != "pass"}
    if bad:
        detail = ", ".join(f"{n}: {s}" for n, s in bad.items())
        raise VerificationFailedError(f"{package}: not verified as passing ({detail}); run 'zoo verify {package}'")
