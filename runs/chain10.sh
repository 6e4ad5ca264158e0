#!/usr/bin/env bash
# session 10 chain (issue 19): Fashion-MNIST tuning (amended rule) → ship → MNIST tuning → ship → CIFAR tuning
set -euo pipefail
export ZOO_DATA_DIR=/work/shared/data
echo "== tune fashion $(date)"
python scripts/baseline_tune.py --ref runs/final/lenet-fashion-mnist-ref --target 0.9055 --runs runs/baselines-fashion
echo "== ship fashion $(date)"
FAMILY=lenet-fashion-mnist TUNED=runs/baselines-fashion bash scripts/ship_baselines.sh
echo "== tune mnist $(date)"
python scripts/baseline_tune.py --ref runs/final/lenet-mnist-ref --target 0.9921 --train-limit 60000 --first-eps 0.3 --runs runs/baselines-mnist
echo "== ship mnist $(date)"
FAMILY=lenet-mnist TUNED=runs/baselines-mnist bash scripts/ship_baselines.sh
echo "== tune cifar $(date)"
python scripts/baseline_tune.py --ref runs/cifar/resnet-cifar10-ref --target 0.9186 --tolerance 0.005 --train-limit 45000 --holdout-start 45000 --holdout-count 5000 --epochs 3 --first-eps 0.00784313725 --largest-eps 0.0313725490 --halvings 2 --runs runs/baselines-cifar
echo "== done $(date)"
