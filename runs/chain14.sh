#!/usr/bin/env bash
# session 14 chain (issue 27): the test set, once per robust model: clean accuracy on all 10,000 images (the
# robustbench entry) and AutoAttack (standard) at the model's own threat model on the first 1,000, with the
# DeepFool / FGS / BIM figures, best-of (DeepFool) and the masking checklist on the same 1,000. AutoAttack's
# adversarials are stored batch by batch in runs/robust/NAME/autoattack (rerun to resume; zoo verify
# --adversarials replays them). Waits for the l2 training (chain12) to finish first.
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
ZOO=${ZOO:-.venv/bin/zoo}
while pgrep -f "runs/chain12.sh" > /dev/null; do sleep 30; done
for name in resnet-cifar10-at-linf resnet-cifar10-at-l2; do
  run=runs/robust/$name
  [ -f "$run/config.json" ] || { echo "== $name: not trained yet"; continue; }
  [ -f "runs/robust/$name.eval.json" ] && continue
  echo "== $name $(date)"
  $ZOO eval "$run" --limit 1000 --reference ddzoo/hub/resnet-cifar10-ref/main --autoattack \
    --adversarials "$run/autoattack" --json > "runs/robust/$name.eval.json.tmp"
  mv "runs/robust/$name.eval.json.tmp" "runs/robust/$name.eval.json"
done
echo "== done $(date)"
