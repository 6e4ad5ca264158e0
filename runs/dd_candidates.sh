#!/usr/bin/env bash
# Issue 27, Deep Defense on top of the robust models: the rule of docs/results/robust-budgets.md ("written before
# the first candidate", amended in session 16), run for rounds 1..ROUNDS (at most 3) of each robust model R:
#   round 1: λ 1.875, c = 4.4/ρ_R, d = 15·c/500 (ρ_R: R's held-out ρ₂, runs/robust/R.holdout.json);
#   round r > 1: one move from round r-1's held-out figures — λ / 2 if its held-out clean accuracy is more than
#   1 point below R's, else λ × 2; a move back onto a λ already tried ends that model's candidates.
# Each candidate is trained on images 0-44,999 and held out on 45,000-49,999 (PGD-10 at R's budget on the first
# 1,000). Every step resumes: zoo train --resume, and a held-out file is written once, atomically.
# Usage: bash runs/dd_candidates.sh ROUNDS          (session 17: ROUNDS 2 was runs/chain17.sh, then 3)
set -euo pipefail
rounds=${1:?usage: bash runs/dd_candidates.sh ROUNDS}
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
export PATH="$PWD/.venv/bin:$PATH"
candidate() {  # NAME LAMBDA: train one candidate and measure it on the held-out images
  local name=$1 lam=$2 run=runs/robust/$1 out=runs/robust/dd/$1-dd-lam$2 budget c d
  budget=$([ "$name" = resnet-cifar10-at-l2 ] && echo l2:0.5 || echo linf:8/255)
  read -r c d < <(python -c "import json,sys; r=json.load(open(sys.argv[1]))['rho2_50_normalized']; c=4.4/r; print(f'{c:.6g} {15*c/500:.6g}')" "$run.holdout.json")
  echo "== $name DD candidate λ $lam, c $c, d $d $(date)"
  zoo train --recipe deep-defense --init "$run" --train-limit 45000 --lambda "$lam" --c "$c" --d "$d" \
    --candidates 3 --epochs 3 --out "$out" --resume
  [ -s "$out.holdout.json" ] || { python scripts/holdout_rho.py "$out" --start 45000 --count 5000 --pgd "$budget" \
      > "$out.holdout.json.tmp" && mv "$out.holdout.json.tmp" "$out.holdout.json"; }
  echo "== $name candidate λ $lam held out $(date): $(cat "$out.holdout.json")"
}
next_lambda() {  # NAME LAMBDA: the rule's move from the candidate's held-out figures
  python - "runs/robust/$1.holdout.json" "runs/robust/dd/$1-dd-lam$2.holdout.json" "$2" <<'EOF'
import json, sys
robust, candidate, lam = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
loss = robust["accuracy"] - candidate["accuracy"]
print(f"{lam / 2:g}" if loss > 0.01 else f"{lam * 2:g}")
EOF
}
for name in resnet-cifar10-at-l2 resnet-cifar10-at-linf; do
  tried=" 1.875 " lam=1.875
  candidate "$name" "$lam"
  for ((round = 2; round <= rounds && round <= 3; round++)); do
    lam=$(next_lambda "$name" "$lam")
    case "$tried" in *" $lam "*) echo "== $name: the rule's move goes back to λ $lam; no more candidates"; break;; esac
    tried="$tried$lam "
    candidate "$name" "$lam"
  done
done
echo "== done $(date)"
