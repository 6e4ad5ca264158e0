"""FMN (Pintor et al. 2021) in l2, with foolbox 3.3.4's projection repaired.

foolbox's ``L2FMNAttack.project`` computes ``factor = min(1, norms / norms)``, always 1, from the norm of the
image rather than of the perturbation: the adaptive ε-ball is never applied. The attack then takes unconstrained
normalised-gradient steps and keeps its first boundary crossing, about ``max_stepsize`` long (median ‖r‖₂ 0.9996
on resnet-cifar10-dd with the default step 1.0, where DDN finds 0.093). :class:`L2FMN` projects the perturbation
onto the ε-ball as the paper's Algorithm 1 does; everything else is foolbox's. Imported lazily (foolbox is the
``audit`` extra).
"""

from __future__ import annotations

from ddzoo.optional import require

require("foolbox", "the FMN attack", extra="audit")  # without the extra: a one-line error, not a traceback

import eagerpy as ep  # noqa: E402  (foolbox's own dependency)
from foolbox.attacks import L2FMNAttack  # noqa: E402


class L2FMN(L2FMNAttack):
    """foolbox's l2 FMN whose projection keeps ‖x − x0‖₂ ≤ ε."""

    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        delta = x - x0
        norms = ep.maximum(delta.flatten(start=1).norms.l2(axis=-1), 1e-12)
        factor = ep.minimum(1, epsilon / norms)
        return x0 + delta * factor.reshape((-1,) + (1,) * (x.ndim - 1))
