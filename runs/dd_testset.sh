#!/usr/bin/env bash
# Issue 27, Deep Defense on top: the choice among each robust model R's candidates (runs/dd_candidates.sh) and the
# test-set evaluation of the chosen one against R, as docs/results/robust-budgets.md plans it (session 17):
#   choice: among candidates whose held-out clean accuracy is at most 1 point below R's, the highest held-out
#   PGD-10 accuracy (ties within 0.5 point: the higher ρ₂); none: nothing chosen, nothing evaluated;
#   first 1,000 test images: DeepFool ρ₂, best-of minimal ‖r‖₂ (DeepFool, FMN, DDN) and AutoAttack at R's
#   budget ε for the candidate, the same again for R (its stored AutoAttack batches replayed); first 500:
#   AutoAttack at ε/2 and ε/4 for both. Every record also has clean accuracy on all 10,000 (its RobustBench
#   entry) and the masking checklist.
# Usage: bash runs/dd_testset.sh [NAME ...]   (default: both robust models). TRUST=1 reuses stored AutoAttack
# batches signed by another cache's key (counted in the records). Every step resumes: AutoAttack batch by batch,
# and each record is written once, atomically: runs/robust/dd/CANDIDATE.{eval,eval-small}.json and
# runs/robust/NAME.{eval-bestof,eval-small}.json (R's session-15 NAME.eval.json stays as it was).
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
export PATH="$PWD/.venv/bin:$PATH"
reference=ddzoo/hub/resnet-cifar10-ref/main
chosen() {  # NAME: the rule's choice among NAME's candidates (empty if none qualifies); fails if they are unfinished
  python - "$1" <<'EOF'
import json, sys
from pathlib import Path
name = sys.argv[1]
done = Path(f"runs/robust/dd/{name}.candidates.json")
if not done.is_file():
    sys.exit(f"{done} is missing: finish the candidates first (bash runs/dd_candidates.sh 3)")
robust = json.loads(Path(f"runs/robust/{name}.holdout.json").read_text())
held = [json.loads(Path(f"runs/robust/dd/{name}-dd-lam{lam}.holdout.json").read_text())
        for lam in json.loads(done.read_text())["lambdas"]
        if not Path(f"runs/robust/dd/{name}-dd-lam{lam}.stopped").exists()]
clean = lambda r: round(r["accuracy"] * 5000)  # images right of 5,000 held out (exact ties, no float noise)
guard = lambda r: round(r["guard"]["accuracy"] * 1000)  # of the guard's 1,000
eligible = [c for c in held if clean(robust) - clean(c) <= 50]  # at most 1 point below R's
if eligible:
    best = max(map(guard, eligible))
    print(max((c for c in eligible if best - guard(c) <= 5), key=lambda c: c["rho2_50_normalized"])["checkpoint"])
EOF
}
evaluate() {  # RUN OUT LIMIT BUDGETS [--attacks ...]: one zoo eval record, written once
  local run=$1 out=$2 limit=$3 budgets=$4
  shift 4
  [ -s "$out" ] && return
  echo "== zoo eval $run --limit $limit --budgets $budgets $* $(date)"
  zoo eval "$run" --limit "$limit" --reference "$reference" --autoattack --budgets "$budgets" "$@" \
    --adversarials "$run/autoattack" $([ "${TRUST:-0}" = 1 ] && echo --trust-adversarials) --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
names=("$@")
[ $# -gt 0 ] || names=(resnet-cifar10-at-l2 resnet-cifar10-at-linf)
# Two passes, so that both models' shipping-test records (R's budget) exist before the hours of smaller budgets.
for pass in budget smaller; do
  for name in "${names[@]}"; do
    run=runs/robust/$name candidate=$(chosen "$name")
    if [ -z "$candidate" ]; then echo "== $name: no candidate within 1 point of R's held-out clean accuracy"; continue; fi
    echo "== $name ($pass): chosen $candidate $(date)"
    case $name in
      *-l2) budget=l2:0.5 smaller=l2:0.25,l2:0.125 ;;
      *) budget=linf:8/255 smaller=linf:4/255,linf:2/255 ;;
    esac
    if [ $pass = budget ]; then
      evaluate "$candidate" "$candidate.eval.json" 1000 "$budget" --attacks deepfool,fmn,ddn
      evaluate "$run" "$run.eval-bestof.json" 1000 "$budget" --attacks deepfool,fmn,ddn
    else
      evaluate "$candidate" "$candidate.eval-small.json" 500 "$smaller"
      evaluate "$run" "$run.eval-small.json" 500 "$smaller"
    fi
  done
done
echo "== done $(date)"
