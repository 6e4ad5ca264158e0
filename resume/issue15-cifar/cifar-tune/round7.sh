#!/usr/bin/env bash
# session 8, round 7 by the rule: round 6 (lambda 1.875, c 500) passed the ratio but lost 0.94 pt -> halve lambda
cd /work/main
export ZOO_DATA_DIR=/work/shared/data PATH=/work/main/.venv/bin:$PATH PYTHON=/work/main/.venv/bin/python
date
bash scripts/cifar_tune.sh "--lambda 0.9375 --c 500 --d 15 --candidates 3 --epochs 3"
date
