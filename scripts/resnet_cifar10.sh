#!/usr/bin/env bash
# resnet-cifar10-ref and resnet-cifar10-dd (issue 15) with the zoo's own commands: the reference on CIFAR-10
# training images 0-44,999 (45,000-49,999 are held out for tuning Deep Defense: scripts/cifar_tune.sh), its
# Deep Defense fine-tune with the options chosen there, full-test-set evaluations, export, verification on
# VERIFY_LIMIT test images, and the bundled packages. Every step resumes where it stopped (state saved after
# each epoch). The same recipe runs on a GPU with DEVICE=cuda (channels-last is used on CPUs only).
#   ZOO_DATA_DIR=../shared/data DD_OPTIONS="..." [DD_FROM=runs/cifar-tune/dd-...] bash scripts/resnet_cifar10.sh
#   SMOKE=1 bash scripts/resnet_cifar10.sh                                            # CPU smoke run, minutes
set -euo pipefail
RUNS=${RUNS:-runs/cifar}
ZOO=${ZOO:-zoo}
HUB=${HUB:-ddzoo/hub}
EPOCHS=${EPOCHS:-80}
DEVICE=(${DEVICE:+--device "$DEVICE"})
DD_OPTIONS=${DD_OPTIONS:-}
LIMIT=()       # evaluation images (default: the full test set)
TRAIN=(--train-limit 45000)
VERIFY_LIMIT=${VERIFY_LIMIT:-2000}
SQUARE=${SQUARE:-200}         # images for the query-only Square attack on each artifact
DD_FROM=${DD_FROM:-}          # the tuning candidate chosen on held-out images: the same training, so it is reused
if [ -n "${SMOKE:-}" ]; then  # proves the chain on a CPU in minutes; never published under the real names
  RUNS=${RUNS}-smoke; EPOCHS=1; HUB=$RUNS/hub; LIMIT=(--limit 100); TRAIN=(--train-limit 1000)
  DD_OPTIONS="--epochs 1 --candidates 3 $DD_OPTIONS"; VERIFY_LIMIT=100; SQUARE=20; DD_FROM=
elif [ -z "$DD_OPTIONS" ]; then
  echo "set DD_OPTIONS to the Deep Defense options chosen on held-out images (docs/results/cifar10.md)" >&2; exit 1
fi
mkdir -p "$RUNS"
ref="$RUNS/resnet-cifar10-ref"; dd="$RUNS/resnet-cifar10-dd"
$ZOO train --recipe reference --model resnet20 --dataset cifar10 --epochs "$EPOCHS" --warmup-epochs 2 --lr 0.1 \
  --batch-size 128 --out "$ref" --resume "${TRAIN[@]}" "${DEVICE[@]}"
if [ -n "$DD_FROM" ] && [ ! -e "$dd" ]; then cp -r "$DD_FROM" "$dd"; fi   # a finished run: train below keeps it
# shellcheck disable=SC2086
$ZOO train --recipe deep-defense --init "$ref" --out "$dd" --resume "${TRAIN[@]}" "${DEVICE[@]}" $DD_OPTIONS
for ckpt in "$ref" "$dd"; do
  [ -s "$ckpt.eval.json" ] || { $ZOO eval "$ckpt" "${LIMIT[@]}" "${DEVICE[@]}" --json > "$ckpt.eval.json.tmp" \
    && mv "$ckpt.eval.json.tmp" "$ckpt.eval.json"; }
done
for name in resnet-cifar10-ref resnet-cifar10-dd; do
  pkg="$RUNS/packages/$name"
  $ZOO export "$RUNS/$name" --out "$pkg"
  $ZOO verify "$pkg" --limit "$VERIFY_LIMIT" --square "$SQUARE" \
    --plot "$RUNS/packages/$name.verify.png" || [ $? -eq 3 ]  # 3: a failed gate
  $ZOO publish "$pkg" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified
done
