#!/usr/bin/env bash
# session 16 chain (issue 27): runs/chain15.sh without its shipping step (both robust models are bundled). The
# Deep-Defense-on-top rule of
# docs/results/robust-budgets.md: held-out ρ_R and guard for each robust model R, then the first candidate
# (λ 1.875, c = 4.4/ρ_R, d = 15·c/500) for the l2 model, then for the l-inf one. Every step resumes.
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
export PATH="$PWD/.venv/bin:$PATH"
for name in resnet-cifar10-at-l2 resnet-cifar10-at-linf; do
  run=runs/robust/$name
  budget=$([ "$name" = resnet-cifar10-at-l2 ] && echo l2:0.5 || echo linf:8/255)
  [ -s "$run.holdout.json" ] || { python scripts/holdout_rho.py "$run" --start 45000 --count 5000 --pgd "$budget" \
      > "$run.holdout.json.tmp" && mv "$run.holdout.json.tmp" "$run.holdout.json"; }
  echo "== $name held out $(date): $(cat "$run.holdout.json")"
done
for name in resnet-cifar10-at-l2 resnet-cifar10-at-linf; do
  run=runs/robust/$name
  read -r c d < <(python -c "import json,sys; r=json.load(open(sys.argv[1]))['rho2_50_normalized']; c=4.4/r; print(f'{c:.6g} {15*c/500:.6g}')" "$run.holdout.json")
  out=runs/robust/dd/$name-dd-lam1.875
  echo "== $name DD candidate λ 1.875, c $c, d $d $(date)"
  zoo train --recipe deep-defense --init "$run" --train-limit 45000 --lambda 1.875 --c "$c" --d "$d" \
    --candidates 3 --epochs 3 --out "$out" --resume
  budget=$([ "$name" = resnet-cifar10-at-l2 ] && echo l2:0.5 || echo linf:8/255)
  [ -s "$out.holdout.json" ] || { python scripts/holdout_rho.py "$out" --start 45000 --count 5000 --pgd "$budget" \
      > "$out.holdout.json.tmp" && mv "$out.holdout.json.tmp" "$out.holdout.json"; }
  echo "== $name candidate held out $(date): $(cat "$out.holdout.json")"
done
echo "== done $(date)"
