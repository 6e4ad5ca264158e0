"""``zoo verify``: robustness measured on the exact bytes that will be deployed.

The pipeline, one module a stage: :mod:`.plan` (settings, images, artifacts, ε_ref) → :mod:`.checkpoint` (the
gradient attacks, once) → :mod:`.replay` (each artifact checked against them with forward passes; the
artifact-in-the-loop DeepFool of :mod:`.attack` where it leaves the checkpoint's path) → :mod:`.gate` →
records (:mod:`.record`, :mod:`.pipeline`; their types: :mod:`ddzoo.records`) and their reading (:mod:`.report`);
a long run's progress between batches: :mod:`.progress`.
"""

from ddzoo.errors import VerificationFailedError
from ddzoo.verification.gate import Gate, require_passing
from ddzoo.verification.pipeline import verify_package
from ddzoo.verification.plan import VerifySettings
from ddzoo.verification.report import table_row

__all__ = ["Gate", "VerificationFailedError", "VerifySettings", "require_passing", "table_row", "verify_package"]
