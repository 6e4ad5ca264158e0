#!/usr/bin/env bash
# One check of ddzoo on a machine with a GPU, PyTorch with CUDA preinstalled and no network (issue 28, item 7).
# Prints one JSON document: the plain and Deep Defense training steps (ResNet-20, batch 128), DeepFool images/s
# against foolbox (ResNet-20, box-constrained, 50 iterations, K = 10), and `zoo verify --limit 1000` of
# resnet-cifar10-dd (checkpoint on the GPU's torch; ONNX artifacts on onnxruntime's CUDA provider when the
# wheels bring onnxruntime-gpu, its CPU provider otherwise). About 8 minutes on a GPU; --smoke: a few on a CPU.
#
#   scripts/device_wheels.sh wheels/          # beforehand, where PyPI is reachable (downloads, installs nothing)
#   scripts/device_check.sh --wheels wheels/ [--smoke] [--out runs/device-check] [--python python3]
#
# The project's other dependencies install from --wheels with --no-index into .venv-device, a venv that sees
# the machine's own torch (--system-site-packages). Exit codes: 0 done, 2 usage, 1 a step failed (its log in
# --out).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels="" smoke=0 out=runs/device-check python=python3
usage="usage: scripts/device_check.sh [--wheels DIR] [--smoke] [--out DIR] [--python PYTHON]"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) wheels=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --out) out=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
export ZOO_DATA_DIR=${ZOO_DATA_DIR:-$(cd .. && pwd)/shared/data} ZOO_OFFLINE=1 PYTHONUNBUFFERED=1
venv=${DEVICE_VENV:-.venv-device}
if [ ! -x "$venv/bin/zoo" ]; then
  [ -n "$wheels" ] || { echo "no $venv yet: pass --wheels DIR (made by scripts/device_wheels.sh)" >&2; exit 2; }
  "$python" -m venv --system-site-packages "$venv"
  runtime=onnx; ls "$wheels"/onnxruntime_gpu-* >/dev/null 2>&1 && runtime=gpu
  "$venv/bin/pip" install -q --no-index --find-links "$wheels" -e ".[$runtime,audit,report]" > "$out/install.log" 2>&1
fi
py="$venv/bin/python"
device=$("$py" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
ref=$("$py" -c "from ddzoo.zoo import local_packages as p; print(next(m.folder for m in p() if m.name == 'resnet-cifar10-ref'))")
if [ "$smoke" = 1 ]; then train_batch=16 images=40 repeats=2 limit=40 batch=20
else train_batch=128 images=1000 repeats=10 limit=1000 batch=500; fi

step() {  # name, command...: run one measurement, its output in $out/NAME.log, its seconds in $out/NAME.seconds
  local name=$1; shift
  local start=$SECONDS
  echo "device_check: $name" >&2
  "$@" > "$out/$name.log" 2>&1 || { echo "device_check: $name failed; see $out/$name.log" >&2; exit 1; }
  echo $((SECONDS - start)) > "$out/$name.seconds"
}
step train_step "$py" bench/train_step.py --checkpoint "$ref" --batch "$train_batch" --repeats "$repeats" --skip-compile \
  --device "$device" --json "$out/train_step.json"
step deepfool "$py" bench/deepfool.py --models resnet20 --resnet "$ref" --images "$images" --rounds 2 \
  --skip-torchattacks --device "$device" --json "$out/deepfool.json"
rm -rf "$out/resnet-cifar10-dd"
step verify "$venv/bin/zoo" verify resnet-cifar10-dd --limit "$limit" --batch-size "$batch" --square 0 \
  --out "$out/resnet-cifar10-dd" --json
"$py" - "$out" "$device" "$smoke" <<'PY'
import json, sys
from pathlib import Path

import torch

out, device, smoke = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
seconds = {p.stem: int(p.read_text()) for p in out.glob("*.seconds")}
train = json.loads((out / "train_step.json").read_text())
deepfool = json.loads((out / "deepfool.json").read_text())[0]
records = json.loads((out / "resnet-cifar10-dd" / "verification.json").read_text())["records"]
print(json.dumps({
    "device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "smoke": smoke,
    "torch": torch.__version__, "seconds": seconds,
    "train_step": {row["step"]: round(row["images_per_s"], 1) for row in train["rows"]},
    "deepfool_images_per_s": {row["method"]: round(row["images_per_s"], 1) for row in deepfool["rows"]},
    "verify": {name: {"runtime": r["runtime"].get("provider", r["runtime"].get("backend")),
                      "accuracy": r["clean_accuracy"], "rho2": r["deepfool"]["50"]["rho2"],
                      "gate": r["gate"]["passed"], "timings": r["timings"]} for name, r in records.items()},
}, indent=2))
PY
