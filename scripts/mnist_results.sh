#!/usr/bin/env bash
# Reproduce docs/results/mnist.md and fashion-mnist.md (Deep Defense on MNIST and Fashion-MNIST) on a CPU machine.
# Every step resumes where it stopped; evaluations are written next to the checkpoints as JSON.
#   ZOO_DATA_DIR=../shared/data RUNS=runs bash scripts/mnist_results.sh
# PAIRS picks model:dataset pairs; DD_OPTIONS overrides the Deep Defense options of every pair.
set -euo pipefail
RUNS=${RUNS:-runs}
ZOO=${ZOO:-zoo}
mkdir -p "$RUNS"
timed() { local start=$SECONDS; "$@"; echo "    ($((SECONDS - start)) s)" >&2; }

# Per-pair options (docs/results/ says how they were chosen). Fashion-MNIST was tuned on held-out images:
# its pair trains on the first 50,000 training images and scripts/holdout_rho.py scores images 50,000+.
ref_options() {
  case "$1" in
    lenet:fashion-mnist) echo "--train-limit 50000" ;;
    *) echo "" ;;
  esac
}
dd_options() {
  case "$1" in
    lenet:fashion-mnist) echo "--train-limit 50000 --c 20 --d 15 --candidates 3 --epochs 7" ;;
    *) echo "--c 10" ;;
  esac
}

for pair in ${PAIRS:-lenet:mnist lenet:fashion-mnist mlp:mnist}; do
  arch=${pair%%:*}; data=${pair#*:}
  ref="$RUNS/$arch-$data-ref"; dd="$RUNS/$arch-$data-dd"
  echo "== $arch on $data"
  # shellcheck disable=SC2046
  timed $ZOO train --recipe reference --model "$arch" --dataset "$data" --epochs 10 --out "$ref" --resume \
    $(ref_options "$pair")
  # shellcheck disable=SC2046
  timed $ZOO train --recipe deep-defense --init "$ref" --out "$dd" --resume ${DD_OPTIONS:-$(dd_options "$pair")}
  for ckpt in "$ref" "$dd"; do
    if [ ! -s "$ckpt.eval.json" ]; then
      timed $ZOO eval "$ckpt" --json > "$ckpt.eval.json.tmp"
      mv "$ckpt.eval.json.tmp" "$ckpt.eval.json"
    fi
  done
done
