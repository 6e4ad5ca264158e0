#!/usr/bin/env bash
# Issue 27, Deep Defense on top: the choice among each robust model R's candidates (runs/dd_candidates.sh) and the
# test-set evaluation of the chosen one against R, as docs/results/robust-budgets.md plans it (session 17):
#   choice: among candidates whose held-out clean accuracy is at most 1 point below R's, the highest held-out
#   PGD-10 accuracy (ties within 0.5 point: the higher ρ₂); none: nothing chosen, nothing evaluated;
#   first 1,000 test images: clean, DeepFool ρ₂, best-of minimal ‖r‖₂ (DeepFool, FMN, DDN) and AutoAttack at R's
#   budget ε for the candidate, the same again for R (its stored AutoAttack batches replayed);
#   first 500: AutoAttack at ε/2 and ε/4 for both.
# Usage: bash runs/dd_testset.sh [NAME ...]   (default: both robust models). TRUST=1 reuses stored AutoAttack
# batches signed by another cache's key (counted in the records). Every step resumes: AutoAttack batch by batch,
# and each record is written once, atomically, as runs/robust/{NAME,dd/CANDIDATE}.{eval,eval-small}.json.
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
export PATH="$PWD/.venv/bin:$PATH"
reference=ddzoo/hub/resnet-cifar10-ref/main
chosen() {  # NAME: the rule's choice among NAME's held-out candidates (empty if none qualifies)
  python - "runs/robust/$1.holdout.json" runs/robust/dd/"$1"-dd-lam*.holdout.json <<'EOF'
import json, sys
robust = json.load(open(sys.argv[1]))
held = [json.load(open(path)) for path in sys.argv[2:]]
eligible = [c for c in held if robust["accuracy"] - c["accuracy"] <= 0.01]
if eligible:
    best = max(c["guard"]["accuracy"] for c in eligible)
    print(max((c for c in eligible if best - c["guard"]["accuracy"] <= 0.005),
              key=lambda c: c["rho2_50_normalized"])["checkpoint"])
EOF
}
evaluate() {  # RUN OUT LIMIT BUDGETS [--attacks ...]: one zoo eval record, written once
  local run=$1 out=$2 limit=$3 budgets=$4
  shift 4
  [ -s "$out" ] && return
  echo "== zoo eval $run --limit $limit --budgets $budgets $* $(date)"
  zoo eval "$run" --limit "$limit" --reference "$reference" --autoattack --budgets "$budgets" "$@" \
    --adversarials "$run/autoattack" ${TRUST:+--trust-adversarials} --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
names=("$@")
[ $# -gt 0 ] || names=(resnet-cifar10-at-l2 resnet-cifar10-at-linf)
for name in "${names[@]}"; do
  run=runs/robust/$name candidate=$(chosen "$name")
  if [ -z "$candidate" ]; then echo "== $name: no candidate within 1 point of R's held-out clean accuracy"; continue; fi
  echo "== $name: chosen $candidate $(date)"
  case $name in
    *-l2) budget=l2:0.5 smaller=l2:0.25,l2:0.125 ;;
    *) budget=linf:8/255 smaller=linf:4/255,linf:2/255 ;;
  esac
  evaluate "$candidate" "$candidate.eval.json" 1000 "$budget" --attacks deepfool,fmn,ddn
  evaluate "$run" "$run.eval-bestof.json" 1000 "$budget" --attacks deepfool,fmn,ddn
  evaluate "$candidate" "$candidate.eval-small.json" 500 "$smaller"
  evaluate "$run" "$run.eval-small.json" 500 "$smaller"
done
echo "== done $(date)"
