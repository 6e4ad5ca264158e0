#!/usr/bin/env bash
# Round 7 resumed (epochs 2-3 + scoring). Command recorded here.
set -e
cd /work/main
export ZOO_DATA_DIR=/work/shared/data PATH=/work/main/.venv/bin:$PATH PYTHON=/work/main/.venv/bin/python
bash scripts/cifar_tune.sh "--lambda 0.9375 --c 500 --d 15 --candidates 3 --epochs 3"
echo DONE
