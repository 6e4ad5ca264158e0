"""Issue 27's shipping test for a Deep Defense fine-tune of a robust model R (docs/results/robust-budgets.md):
it ships as ``-dd`` only if it loses at most 1 point of clean accuracy against R on all 10,000 test images and its
AutoAttack accuracy at R's budget is not significantly lower, paired image by image on the same test images
(exact one-sided McNemar test, p < 0.025: the gate's test, :mod:`ddzoo.verification.robust`).

    python scripts/dd_shipping.py CANDIDATE R --budget l2:0.5 [--limit 1000] [--trust] [--out FILE.json]

Reads only what ``runs/dd_testset.sh`` stored: both models' AutoAttack batches (``RUN/autoattack``) are replayed,
never attacked again (a batch not stored is an error). Prints the JSON verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ddzoo.data import load_split
from ddzoo.errors import CheckpointError
from ddzoo.eval.autoattack import autoattack
from ddzoo.eval.threat import ThreatModel
from ddzoo.fileio import write_json
from ddzoo.models.inference import predict_labels
from ddzoo.package import load_checkpoint
from ddzoo.stats import Accuracy, PairedDrop
from ddzoo.verification.robust import SIGNIFICANCE

MAX_CLEAN_LOSS = 0.01  # the rule: at most 1 point of clean accuracy


def shipping_test(candidate: Path, robust: Path, budget: str, limit: int, trust: bool) -> dict:
    threat = ThreatModel.parse(budget)
    x, y = load_split("cifar10", "test").tensors()
    flags, clean, unverified = {}, {}, 0
    for role, run in (("R", robust), ("candidate", candidate)):
        model, _ = load_checkpoint(run, "cpu")  # in eval mode
        clean[role] = predict_labels(model, x) == y
        try:
            found = autoattack(model, x[:limit], y[:limit], threat, store=run / "autoattack", trust=trust,
                               replay_only=True)
        except CheckpointError as error:
            sys.exit(f"{run}: {error} (bash runs/dd_testset.sh)")
        flags[role] = found.robust
        unverified += found.unverified_batches
    clean_drop = PairedDrop.of(clean["R"], clean["candidate"])
    robust_drop = PairedDrop.of(flags["R"], flags["candidate"])
    p = robust_drop.p_worse()
    reasons = []
    if clean_drop.drop > MAX_CLEAN_LOSS + 1e-12:
        reasons.append(f"clean accuracy {100 * clean_drop.drop:.2f} pt below R's on all {len(y):,} test images "
                       f"(the rule allows 1 pt)")
    if p < SIGNIFICANCE:
        reasons.append(f"{threat.label('AutoAttack', limit)}: {100 * robust_drop.drop:.1f} pt below R's "
                       f"({robust_drop.lost} images lost, {robust_drop.gained} gained; one-sided exact McNemar "
                       f"p = {p:.2g} < {SIGNIFICANCE})")
    return {"candidate": str(candidate), "R": str(robust),
            "clean": {"images": len(y), "R": Accuracy.of(clean["R"]).to_json(),
                      "candidate": Accuracy.of(clean["candidate"]).to_json(), "paired": clean_drop.to_json()},
            "autoattack": {"label": threat.label("AutoAttack", limit), "R": Accuracy.of(flags["R"]).to_json(),
                           "candidate": Accuracy.of(flags["candidate"]).to_json(), "paired": robust_drop.to_json(),
                           "p_worse": p, "unverified_batches": unverified},
            "ships": not reasons, "reasons": reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidate", type=Path)
    parser.add_argument("robust", type=Path, help="R: the robust model the candidate was fine-tuned from")
    parser.add_argument("--budget", required=True, help="R's threat model, e.g. l2:0.5 or linf:8/255")
    parser.add_argument("--limit", type=int, default=1000, help="AutoAttack on the first N test images")
    parser.add_argument("--trust", action="store_true", help="also replay batches another cache signed")
    parser.add_argument("--out", type=Path, help="also write the verdict here (atomically)")
    args = parser.parse_args()
    verdict = shipping_test(args.candidate, args.robust, args.budget, args.limit, args.trust)
    if args.out:
        write_json(args.out, verdict)
    print(json.dumps(verdict, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
