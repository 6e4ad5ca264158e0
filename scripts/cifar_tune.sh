#!/usr/bin/env bash
# Deep Defense on CIFAR-10, tuned on held-out training images (the rule: docs/results.md, "ResNet-20 on
# CIFAR-10"). Each candidate fine-tunes the reference on images 0-44,999 and is scored on 45,000-49,999;
# every step resumes where it stopped, and scores go to $RUNS/holdout.jsonl (one JSON line per checkpoint).
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
score "$REF"
for options in "$@"; do
  name=dd$(echo "$options" | sed -e 's/--lambda /-l/; s/--c /-c/; s/--d /-d/; s/--candidates /-k/; s/--epochs /-e/' \
    -e 's/ //g; s/--/-/g')
  echo "== $name: $options" >&2
  start=$SECONDS
  # shellcheck disable=SC2086
  $ZOO train --recipe deep-defense --init "$REF" --train-limit 45000 --out "$RUNS/$name" --resume $options
  echo "   trained in $((SECONDS - start)) s (this call)" >&2
  score "$RUNS/$name"
done
