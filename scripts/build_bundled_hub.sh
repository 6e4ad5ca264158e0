#!/usr/bin/env bash
# Rebuild ddzoo/hub, the models bundled with ddzoo, from the checkpoints of scripts/mnist_results.sh:
# export → verify (on the first $LIMIT test images; Square on $SQUARE; best-of and AutoAttack on the checkpoint
# on $STRONG) → publish the passing artifacts to the directory hub, each card comparing the model with the
# other packages of its family in $RUNS/packages (lenet-fashion-mnist-ref with lenet-fashion-mnist-dd, -at ...).
# PUBLISH_ONLY=1 republishes the verified packages as they are (new cards, no export or verification).
#   ZOO_DATA_DIR=../shared/data RUNS=runs/final bash scripts/build_bundled_hub.sh
set -euo pipefail
RUNS=${RUNS:-runs/final}
ZOO=${ZOO:-zoo}
LIMIT=${LIMIT:-2000}
SQUARE=${SQUARE:-200}
STRONG=${STRONG:-500}
HUB=${HUB:-ddzoo/hub}
for name in ${NAMES:-lenet-mnist-ref lenet-mnist-dd lenet-fashion-mnist-ref lenet-fashion-mnist-dd}; do
  pkg="$RUNS/packages/$name"
  echo "== $name"
  if [ -z "${PUBLISH_ONLY:-}" ]; then
    $ZOO export "$RUNS/$name" --out "$pkg"
    # exit code 3 = an artifact failed the gate; its record stays in verification.json, publish leaves it out
    $ZOO verify "$pkg" --limit "$LIMIT" --square "$SQUARE" --strong "$STRONG" --plot "$RUNS/packages/$name.verify.png" || [ $? -eq 3 ]
  fi
  compare=()
  for peer in "$RUNS/packages/${name%-*}"-*; do
    case "$peer" in "$pkg"|*.png) ;; *) [ -f "$peer/verification.json" ] && compare+=(--compare "$peer") ;; esac
  done
  $ZOO publish "$pkg" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified "${compare[@]}"
done
