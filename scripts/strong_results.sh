#!/usr/bin/env bash
# The stronger-attack rows of docs/results/across-datasets.md (issue 18) for the bundled LeNet pairs: `zoo eval` on the full
# test set plus minimum-norm best-of (DeepFool, FMN, DDN), AutoAttack and the gradient-masking checklist on the
# first $STRONG_LIMIT images. The checkpoints come from scripts/mnist_results.sh ($RUNS/NAME); where one is
# missing, the bundled package's own checkpoint (its config.json and model.safetensors) is used.
#   ZOO_DATA_DIR=../shared/data RUNS=runs/final bash scripts/strong_results.sh
set -euo pipefail
RUNS=${RUNS:-runs/final}
ZOO=${ZOO:-zoo}
STRONG_LIMIT=${STRONG_LIMIT:-500}
for name in ${NAMES:-lenet-mnist-ref lenet-mnist-dd lenet-fashion-mnist-ref lenet-fashion-mnist-dd}; do
  ckpt="$RUNS/$name"
  if [ ! -f "$ckpt/config.json" ]; then
    mkdir -p "$ckpt" && cp "ddzoo/hub/$name/main/config.json" "ddzoo/hub/$name/main/model.safetensors" "$ckpt/"
  fi
  [ -s "$ckpt.strong.json" ] && continue
  echo "== $name" >&2
  start=$SECONDS
  reference=()  # a defended model's reference is its family's -ref (its recorded --init may be another folder)
  case "$name" in *-dd|*-at|*-parseval) reference=(--reference "$RUNS/${name%-*}-ref") ;; esac
  $ZOO eval "$ckpt" "${reference[@]}" --attacks deepfool,fmn,ddn --autoattack --strong-limit "$STRONG_LIMIT" \
    --json > "$ckpt.strong.json.tmp"
  mv "$ckpt.strong.json.tmp" "$ckpt.strong.json"
  echo "    ($((SECONDS - start)) s)" >&2
done
