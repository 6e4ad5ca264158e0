#!/usr/bin/env bash
# Deep Defense on CIFAR-10, tuned on held-out training images (the rule: docs/results/cifar10.md, "ResNet-20 on
# CIFAR-10"). Each candidate fine-tunes the reference on images 0-44,999 and is scored on 45,000-49,999;
# every step resumes where it stopped, and scores go to $RUNS/holdout.jsonl (one JSON line per checkpoint).
# A candidate whose held-out accuracy after its first epoch is already below STOP_BELOW (default: the
# reference's minus 2 points) is stopped there and recorded as {"stopped_after_epoch": 1, ...}.
#   ZOO_DATA_DIR=../shared/data bash scripts/cifar_tune.sh "--lambda 15 --c 25 --d 5 --candidates 3 --epochs 3" ...
set -euo pipefail
RUNS=${RUNS:-runs/cifar-tune}
ZOO=${ZOO:-zoo}
PYTHON=${PYTHON:-python}
REF=${REF:-runs/cifar/resnet-cifar10-ref}
mkdir -p "$RUNS"
score() {  # score CKPT once
  if ! grep -qF "\"checkpoint\": \"$1\"" "$RUNS/holdout.jsonl" 2>/dev/null; then
    "$PYTHON" scripts/holdout_rho.py "$1" --start 45000 --count 5000 >> "$RUNS/holdout.jsonl"
  fi
}
first_epoch_accuracy() {  # held-out accuracy after epoch 1 of the run in $1, or nothing yet
  "$PYTHON" - "$1" <<'PY'
import json, pathlib, sys
from safetensors import safe_open
state = pathlib.Path(sys.argv[1]) / "training_state.safetensors"
if state.exists():
    with safe_open(str(state), "pt") as f:
        curve = json.loads(f.metadata()["progress"]).get("holdout_curve", [])
    if curve:
        print(curve[0])
PY
}
score "$REF"
STOP_BELOW=${STOP_BELOW:-$("$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['accuracy'] - 0.02)" "$RUNS/holdout.jsonl")}
for options in "$@"; do
  name=dd$(echo "$options" | sed -e 's/--lambda /-l/; s/--c /-c/; s/--d /-d/; s/--candidates /-k/; s/--epochs /-e/' \
    -e 's/ //g; s/--/-/g')
  echo "== $name: $options (stopped after epoch 1 below $STOP_BELOW)" >&2
  [ -f "$RUNS/$name/config.json" ] || [ -f "$RUNS/$name/stopped.json" ] || {
    start=$SECONDS
    # shellcheck disable=SC2086
    $ZOO train --recipe deep-defense --init "$REF" --train-limit 45000 --out "$RUNS/$name" --resume $options &
    train=$!
    while kill -0 "$train" 2>/dev/null; do
      sleep 20
      first=$(first_epoch_accuracy "$RUNS/$name")
      if [ -n "$first" ] && "$PYTHON" -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$first" "$STOP_BELOW"; then
        kill "$train"; wait "$train" || true
        echo "{\"checkpoint\": \"$RUNS/$name\", \"options\": \"$options\", \"stopped_after_epoch\": 1, \"accuracy\": $first, \"stop_below\": $STOP_BELOW}" \
          | tee "$RUNS/$name/stopped.json" >> "$RUNS/holdout.jsonl"
        echo "   stopped: held-out accuracy $first after epoch 1 < $STOP_BELOW" >&2
        break
      fi
    done
    wait "$train" 2>/dev/null || true
    echo "   trained in $((SECONDS - start)) s (this call)" >&2
  }
  if [ -f "$RUNS/$name/config.json" ]; then score "$RUNS/$name"; fi
done
