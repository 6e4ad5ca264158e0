#!/usr/bin/env bash
# Stage what the CIFAR-10 baseline tuning resumes from (see README.md beside this file).
set -euo pipefail
here=$(dirname "$0")
mkdir -p runs/cifar/resnet-cifar10-ref runs/baselines-cifar
cp -n ddzoo/hub/resnet-cifar10-ref/main/config.json ddzoo/hub/resnet-cifar10-ref/main/model.safetensors runs/cifar/resnet-cifar10-ref/
cp -rn "$here/runs-baselines-cifar/." runs/baselines-cifar/
