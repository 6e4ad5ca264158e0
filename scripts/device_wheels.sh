#!/usr/bin/env bash
# Download, where PyPI is reachable, the wheels scripts/device_check.sh installs offline on a GPU machine:
# ddzoo's dependencies for Linux x86-64 and the given Python, without torch (the GPU machine brings its own).
#   scripts/device_wheels.sh DIR [--python-version 3.11] [--cpu]   (--cpu: onnxruntime instead of onnxruntime-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/device_wheels.sh DIR [--python-version X.Y] [--cpu]" >&2; exit 2; }
dir=$1; shift; version=3.11 ort=onnxruntime-gpu
while [ $# -gt 0 ]; do
  case "$1" in --python-version) version=$2; shift 2 ;; --cpu) ort=onnxruntime; shift ;; *) exit 2 ;; esac
done
requirements=$(python3 - "$ort" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
wanted = project["dependencies"] + extras["audit"] + extras["report"] + extras["onnx"]
print("\n".join(r for r in wanted if not r.startswith(("torch", "onnxruntime"))) + "\n" + sys.argv[1])
PY
)
echo "$requirements" > "$dir.requirements.txt"
python3 -m pip download -q -d "$dir" --only-binary=:all: --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --python-version "$version" -r "$dir.requirements.txt" setuptools wheel
# pure-Python sdists (foolbox's deps) cannot be fetched --only-binary; build them into wheels here
python3 -m pip wheel -q -w "$dir" --no-deps foolbox==3.3.4 2>/dev/null || true
echo "wheels in $dir ($(ls "$dir" | wc -l) files)"
