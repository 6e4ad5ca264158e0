#!/usr/bin/env bash
# Reproduce docs/results.md (Deep Defense on MNIST and Fashion-MNIST) on a CPU machine.
# Every step resumes where it stopped; evaluations are written next to the checkpoints as JSON.
#   ZOO_DATA_DIR=../shared/data RUNS=runs bash scripts/mnist_results.sh
set -euo pipefail
RUNS=${RUNS:-runs}
ZOO=${ZOO:-zoo}
mkdir -p "$RUNS"
timed() { local start=$SECONDS; "$@"; echo "    ($((SECONDS - start)) s)" >&2; }

for pair in ${PAIRS:-lenet:mnist lenet:fashion-mnist mlp:mnist}; do
  arch=${pair%%:*}; data=${pair#*:}
  ref="$RUNS/$arch-$data-ref"; dd="$RUNS/$arch-$data-dd"
  echo "== $arch on $data"
  timed $ZOO train --recipe reference --model "$arch" --dataset "$data" --epochs 10 --out "$ref" --resume
  timed $ZOO train --recipe deep-defense --init "$ref" --out "$dd" --resume ${DD_OPTIONS---c 10}
  for ckpt in "$ref" "$dd"; do
    if [ ! -s "$ckpt.eval.json" ]; then
      timed $ZOO eval "$ckpt" --json > "$ckpt.eval.json.tmp"
      mv "$ckpt.eval.json.tmp" "$ckpt.eval.json"
    fi
  done
done
