#!/usr/bin/env bash
# Stage what shipping the CIFAR-10 baselines resumes from (see README.md beside this file): the family's
# reference and Deep Defense checkpoints and packages (from the bundled hub) and the tuning folder.
set -euo pipefail
here=$(dirname "$0")
for name in resnet-cifar10-ref resnet-cifar10-dd; do
  mkdir -p "runs/cifar/$name" runs/cifar/packages
  cp -n "ddzoo/hub/$name/main/config.json" "ddzoo/hub/$name/main/model.safetensors" "runs/cifar/$name/"
  [ -d "runs/cifar/packages/$name" ] || cp -r "ddzoo/hub/$name/main" "runs/cifar/packages/$name"
done
mkdir -p runs/baselines-cifar
cp -rn "$here/runs-baselines-cifar/." runs/baselines-cifar/
