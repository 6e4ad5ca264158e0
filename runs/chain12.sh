#!/usr/bin/env bash
# session 12 chain (issue 27): the two robust ResNet-20s, one after the other; rerun to resume.
set -euo pipefail
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-/work/shared/data}
ZOO=${ZOO:-.venv/bin/zoo}
common=(--recipe adversarial --model resnet20 --dataset cifar10 --epochs 30 --batch-size 128 --lr 0.2
        --warmup-epochs 12 --train-limit 45000 --guard-images 1000 --resume --json)
echo "== linf $(date)"
$ZOO train "${common[@]}" --adv-norm linf --adv-eps 0.03137254902 --adv-attack nfgsm --adv-noise 2 \
    --out runs/robust/resnet-cifar10-at-linf
echo "== l2 $(date)"
$ZOO train "${common[@]}" --adv-norm l2 --adv-eps 0.5 --adv-attack pgd --adv-steps 1 --adv-step-size 0.625 \
    --out runs/robust/resnet-cifar10-at-l2
echo "== done $(date)"
