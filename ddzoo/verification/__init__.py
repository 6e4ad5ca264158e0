"""``zoo verify``: robustness measured on the exact bytes that will be deployed.

The pipeline, one module a stage: :mod:`.plan` (settings, images, artifacts, ε_ref) → :mod:`.checkpoint` (the
gradient attacks, once) → :mod:`.replay` (each artifact checked against them with forward passes; the
artifact-in-the-loop DeepFool of :mod:`.attack` where it leaves the checkpoint's path) → :mod:`.gate` →
records (:mod:`.record`, :mod:`.pipeline`) and their reading (:mod:`.report`).
"""

from ddzoo.errors import VerificationFailedError
from ddzoo.verification.gate import Gate, paired_accuracy_drop, require_passing
from ddzoo.verification.pipeline import verify_package
from ddzoo.verification.plan import CHECKPOINT_ARTIFACT, VerifySettings, resolve_eps_ref
from ddzoo.verification.report import HEADLINE_ITERATIONS, accuracy_text, headline, summary_row

__all__ = ["CHECKPOINT_ARTIFACT", "HEADLINE_ITERATIONS", "Gate", "VerificationFailedError", "VerifySettings",
           "accuracy_text", "headline", "paired_accuracy_drop", "require_passing", "resolve_eps_ref", "summary_row",
           "verify_package"]
