#!/usr/bin/env bash
# session 14 chain (issue 27): the test set, once per robust model. First AutoAttack (standard) at each model's own
# threat model on the first 1,000 test images (both models), stored batch by batch in runs/robust/NAME/autoattack (rerun to
# resume; pass TRUST=--trust-adversarials where the batches came from another machine's cache), then `zoo eval`
# (clean accuracy on all 10,000 in its robustbench entry; DeepFool / FGS / BIM, best-of and the masking checklist
# on the same 1,000; AutoAttack replayed from the store). Waits for the l2 training (chain12) first.
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
ZOO=${ZOO:-.venv/bin/zoo}
PYTHON=${PYTHON:-.venv/bin/python}
while pgrep -f "runs/chain12.sh" > /dev/null; do sleep 30; done
for name in resnet-cifar10-at-linf resnet-cifar10-at-l2; do  # AutoAttack first for both (the floors' figure)
  run=runs/robust/$name
  [ -f "$run/config.json" ] || { echo "== $name: not trained yet"; continue; }
  [ -f "runs/robust/$name.eval.json" ] && continue
  echo "== $name autoattack $(date)"
  "$PYTHON" - "$run" ${TRUST:+--trust} <<'PY'
import sys
from ddzoo.data import load_split
from ddzoo.eval.autoattack import autoattack
from ddzoo.eval.threat import declared_threat_models
from ddzoo.package import load_checkpoint
model, config = load_checkpoint(sys.argv[1])
x, y = load_split(config["dataset"], "test").tensors(limit=1000)
for threat in declared_threat_models(config):
    result = autoattack(model, x, y, threat, store=f"{sys.argv[1]}/autoattack", trust="--trust" in sys.argv)
    print(result.record(), flush=True)
PY
done
for name in resnet-cifar10-at-linf resnet-cifar10-at-l2; do
  run=runs/robust/$name
  [ -f "$run/config.json" ] && [ ! -f "runs/robust/$name.eval.json" ] || continue
  echo "== $name eval $(date)"
  $ZOO eval "$run" --limit 1000 --reference ddzoo/hub/resnet-cifar10-ref/main --autoattack \
    --adversarials "$run/autoattack" ${TRUST:+--trust-adversarials} --json > "runs/robust/$name.eval.json.tmp"
  mv "runs/robust/$name.eval.json.tmp" "runs/robust/$name.eval.json"
done
echo "== done $(date)"
