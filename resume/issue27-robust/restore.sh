#!/usr/bin/env bash
# Stage the issue-27 training runs' resumable state into runs/robust (see README.md beside this file).
set -euo pipefail
here=$(dirname "$0")
mkdir -p runs/robust
cp -rn "$here/runs-robust/." runs/robust/
