#!/usr/bin/env bash
# Reproduce docs/results.md (Deep Defense on MNIST and Fashion-MNIST) on a CPU machine.
# Every step resumes where it stopped; evaluations are written next to the checkpoints as JSON.
#   ZOO_DATA_DIR=../shared/data RUNS=runs bash scripts/mnist_results.sh
# PAIRS picks model:dataset pairs; DD_OPTIONS overrides the Deep Defense options of every pair.
set -euo pipefail
RUNS=${RUNS:-runs}
ZOO=${ZOO:-zoo}
mkdir -p "$RUNS"
timed() { local start=$SECONDS; "$@"; echo "    ($((SECONDS - start)) s)" >&2; }

# The Deep Defense options chosen per pair (docs/results.md says how).
dd_options() {
  case "$1" in
    lenet:fashion-mnist) echo "--c 25 --candidates 3" ;;
    *) echo "--c 10" ;;
  esac
}

for pair in ${PAIRS:-lenet:mnist lenet:fashion-mnist mlp:mnist}; do
  arch=${pair%%:*}; data=${pair#*:}
  ref="$RUNS/$arch-$data-ref"; dd="$RUNS/$arch-$data-dd"
  echo "== $arch on $data"
  timed $ZOO train --recipe reference --model "$arch" --dataset "$data" --epochs 10 --out "$ref" --resume
  # shellcheck disable=SC2046
  timed $ZOO train --recipe deep-defense --init "$ref" --out "$dd" --resume ${DD_OPTIONS:-$(dd_options "$pair")}
  for ckpt in "$ref" "$dd"; do
    if [ ! -s "$ckpt.eval.json" ]; then
      timed $ZOO eval "$ckpt" --json > "$ckpt.eval.json.tmp"
      mv "$ckpt.eval.json.tmp" "$ckpt.eval.json"
    fi
  done
done
