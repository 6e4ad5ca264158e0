#!/usr/bin/env bash
# resnet-cifar10-dd (issue 7): reference ResNet-20 on the full CIFAR-10 training set, its Deep Defense
# fine-tune, full-test-set evaluations, export, verification and the bundled packages — all with the zoo's
# own commands. Every step resumes where it stopped (checkpoints after each epoch), so the GPU machine's
# 10-minute calls can continue one another.
#   ZOO_DATA_DIR=... RUNS=runs/cifar bash scripts/resnet_cifar10.sh          # the real run (GPU)
#   SMOKE=1 bash scripts/resnet_cifar10.sh                                    # CPU smoke run on a subset
set -euo pipefail
RUNS=${RUNS:-runs/cifar}
ZOO=${ZOO:-zoo}
HUB=${HUB:-ddzoo/hub}
EPOCHS=${EPOCHS:-200}
DD_OPTIONS=${DD_OPTIONS:-}
LIMIT=()       # evaluation images (default: the full test set)
TRAIN=()
VERIFY_LIMIT=${VERIFY_LIMIT:-10000}
CROSSCHECK=${CROSSCHECK:-8}   # finite-difference cross-check images (6,144 queries per image and step)
if [ -n "${SMOKE:-}" ]; then  # proves the chain on a CPU in minutes; never published under the real names
  RUNS=${RUNS}-smoke; EPOCHS=1; HUB=$RUNS/hub; LIMIT=(--limit 100); TRAIN=(--train-limit 1000)
  DD_OPTIONS="--epochs 1 --candidates 3 $DD_OPTIONS"; VERIFY_LIMIT=100; CROSSCHECK=1
fi
mkdir -p "$RUNS"
ref="$RUNS/resnet-cifar10-ref"; dd="$RUNS/resnet-cifar10-dd"
$ZOO train --recipe reference --model resnet20 --dataset cifar10 --epochs "$EPOCHS" --lr 0.1 --batch-size 128 \
  --out "$ref" --resume "${TRAIN[@]}"
# shellcheck disable=SC2086
$ZOO train --recipe deep-defense --init "$ref" --out "$dd" --resume "${TRAIN[@]}" $DD_OPTIONS
for ckpt in "$ref" "$dd"; do
  [ -s "$ckpt.eval.json" ] || { $ZOO eval "$ckpt" "${LIMIT[@]}" --json > "$ckpt.eval.json.tmp" && mv "$ckpt.eval.json.tmp" "$ckpt.eval.json"; }
done
for name in resnet-cifar10-ref resnet-cifar10-dd; do
  pkg="$RUNS/packages/$name"
  $ZOO export "$RUNS/$name" --out "$pkg"
  $ZOO verify "$pkg" --limit "$VERIFY_LIMIT" --crosscheck "$CROSSCHECK" \
    --plot "$RUNS/packages/$name.verify.png" || [ $? -eq 1 ]
  $ZOO publish "$pkg" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified
done
