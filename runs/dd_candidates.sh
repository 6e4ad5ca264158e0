#!/usr/bin/env bash
# Issue 27, Deep Defense on top of the robust models: the rule of docs/results/robust-budgets.md ("written before
# the first candidate", amended in session 16), run for rounds 1..ROUNDS (at most 3) of each robust model R:
#   round 1: λ 1.875, c = 4.4/ρ_R, d = 15·c/500 (ρ_R: R's held-out ρ₂, runs/robust/R.holdout.json);
#   round r > 1: one move from round r-1's held-out figures — λ / 2 if its held-out clean accuracy is more than
#   1 point below R's (or it was stopped), else λ × 2; a move back onto a λ already tried ends that model's
#   candidates.
# Each candidate is trained on images 0-44,999 and held out on 45,000-49,999 (PGD-10 at R's budget on the first
# 1,000); after its first epoch, a candidate more than 2 points below R's held-out clean accuracy is stopped
# (OUT.stopped). Every step resumes: zoo train --resume, and each held-out file is written once, atomically.
# When a model's rounds are done, runs/robust/dd/NAME.candidates.json lists its λs (runs/dd_testset.sh reads it).
# Usage: bash runs/dd_candidates.sh ROUNDS          (session 17: ROUNDS 2 was runs/chain17.sh, then 3)
set -euo pipefail
rounds=${1:?usage: bash runs/dd_candidates.sh ROUNDS}
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be 1, 2 or 3" >&2; exit 2; }
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
export PATH="$PWD/.venv/bin:$PATH"
lost_more_than() {  # POINTS R_JSON CANDIDATE_JSON: whether the candidate's clean accuracy is that far below R's
  python -c "import json, sys; r, c = (json.load(open(p))['accuracy'] for p in sys.argv[2:]); \
sys.exit(0 if r - c > float(sys.argv[1]) / 100 else 1)" "$@"
}
candidate() {  # NAME LAMBDA: train one candidate (stopped after epoch 1 where the rule says so), hold it out
  local name=$1 lam=$2 run=runs/robust/$1 out=runs/robust/dd/$1-dd-lam$2 budget c d
  budget=$([ "$name" = resnet-cifar10-at-l2 ] && echo l2:0.5 || echo linf:8/255)
  read -r c d < <(python -c "import json,sys; r=json.load(open(sys.argv[1]))['rho2_50_normalized']; c=4.4/r; print(f'{c:.6g} {15*c/500:.6g}')" "$run.holdout.json")
  local train=(zoo train --recipe deep-defense --init "$run" --train-limit 45000 --lambda "$lam" --c "$c" --d "$d"
               --candidates 3 --epochs 3 --out "$out" --resume)
  echo "== $name DD candidate λ $lam, c $c, d $d $(date)"
  if [ ! -s "$out/config.json" ] && [ ! -s "$out.epoch1.json" ]; then  # the rule's check after the first epoch
    "${train[@]}" --stop-after-epochs 1
    python scripts/holdout_rho.py "$run" --during "$out" --start 45000 --count 5000 > "$out.epoch1.json.tmp"
    mv "$out.epoch1.json.tmp" "$out.epoch1.json"
  fi
  if [ -s "$out.epoch1.json" ] && lost_more_than 2 "$run.holdout.json" "$out.epoch1.json"; then
    touch "$out.stopped"
    echo "== $name candidate λ $lam stopped after its first epoch: $(cat "$out.epoch1.json")"
    return
  fi
  "${train[@]}"
  if [ ! -s "$out.holdout.json" ]; then
    python scripts/holdout_rho.py "$out" --start 45000 --count 5000 --pgd "$budget" > "$out.holdout.json.tmp"
    mv "$out.holdout.json.tmp" "$out.holdout.json"
  fi
  echo "== $name candidate λ $lam held out $(date): $(cat "$out.holdout.json")"
}
next_lambda() {  # NAME LAMBDA: the rule's move from that candidate's held-out figures
  local out=runs/robust/dd/$1-dd-lam$2
  [ -e "$out.stopped" ] || [ -s "$out.holdout.json" ] || { echo "no held-out figures in $out.holdout.json" >&2; exit 1; }
  if [ -e "$out.stopped" ] || lost_more_than 1 "runs/robust/$1.holdout.json" "$out.holdout.json"; then
    python -c "import sys; print(f'{float(sys.argv[1]) / 2:g}')" "$2"
  else
    python -c "import sys; print(f'{float(sys.argv[1]) * 2:g}')" "$2"
  fi
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
  if [ "$rounds" -ge 3 ]; then  # the model's candidates are complete: runs/dd_testset.sh chooses among them
    python -c "import json, sys; print(json.dumps({'lambdas': sys.argv[1].split()}))" "$tried" \
      > "runs/robust/dd/$name.candidates.json.tmp"
    mv "runs/robust/dd/$name.candidates.json.tmp" "runs/robust/dd/$name.candidates.json"
  fi
done
echo "== done $(date)"
