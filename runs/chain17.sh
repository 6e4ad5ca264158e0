#!/usr/bin/env bash
# session 17 chain (issue 27, Deep Defense on top; the rule in docs/results/robust-budgets.md): for each robust
# model R, the first candidate (λ 1.875, c = 4.4/ρ_R, d = 15·c/500) and its held-out figures, then the rule's one
# move from them — λ / 2 if the held-out clean accuracy is more than 1 point below R's, else λ × 2 (the rule's
# "guard not below R's" case, and since session 16 also the guard-below case it had left open) — and that
# candidate's held-out figures. Every step resumes (zoo train --resume; a held-out file is written once, atomically).
set -euo pipefail
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
  candidate "$name" 1.875
done
for name in resnet-cifar10-at-l2 resnet-cifar10-at-linf; do
  candidate "$name" "$(next_lambda "$name" 1.875)"
done
echo "== done $(date)"
