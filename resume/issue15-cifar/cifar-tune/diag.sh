#!/usr/bin/env bash
# diagnostic (not a candidate): lambda 0, one epoch, same fine-tune otherwise: what does the fine-tune alone cost?
cd /work/main
export ZOO_DATA_DIR=/work/shared/data PATH=/work/main/.venv/bin:$PATH
date
zoo train --recipe deep-defense --init runs/cifar/resnet-cifar10-ref --train-limit 45000 --out runs/cifar-tune/diag-l0-c25-d15-k3-e3 --resume --lambda 0 --c 25 --d 15 --candidates 3 --epochs 3 --stop-after-epochs 1
date
