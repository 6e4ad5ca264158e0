#!/usr/bin/env bash
# Issue 28 item 4: every bundled package verified on the whole test set, then republished with its family.
# Per package: exported again from the bundled package's checkpoint with all three precisions (INT8 now keeps its
# weights to 7 bits, so it computes the same on x86 CPUs with and without VNNI: docs/explanations/gate.md), the
# bundled verification.json copied beside it (the checkpoint's stronger attacks (--strong) are kept for the same
# weights), then `zoo verify` on every test image with Square on $SQUARE. A package that declares threat models
# (the adversarially trained at-l2 / at-linf) also gets its robust figures (--robust 1000) from the checkpoint's
# stored AutoAttack batches in $ADVERSARIALS/NAME (replayed: --trust-adversarials, since they were signed on another
# machine; the records count them as reused_unverified; a batch missing there would be attacked anew, for hours, so
# the script stops when the folder has none). Then each family is republished,
# every card comparing the others; an artifact that fails the gate stays out (--skip-unverified).
# Resumable: a package whose record already covers the whole test set is skipped, and each finished record is kept
# in $RECORDS (small enough to commit between sessions): a package exported again there (export is deterministic:
# the same bytes) takes its saved record back when every sha256 in it matches, instead of being verified again;
# a package stopped midway goes on from its progress in $STATES/NAME (saved every few batches; commit it too).
#   ZOO_DATA_DIR=../shared/data bash scripts/full_test_set.sh    (NAMES="..." verifies a subset; a family is
#   republished once every member of it is verified on the whole test set, and the exit code is 1 while one waits;
#   PUBLISH=0 publishes nothing; PYTHON: the interpreter whose ddzoo $ZOO runs)
set -euo pipefail
PYTHON=${PYTHON:-python}
RUNS=${RUNS:-runs/full}
ZOO=${ZOO:-zoo}
SQUARE=${SQUARE:-200}
HUB=${HUB:-ddzoo/hub}
ADVERSARIALS=${ADVERSARIALS:-resume/issue28-full-test-set/adversarials}
RECORDS=${RECORDS:-resume/issue28-full-test-set/records}
STATES=${STATES:-resume/issue28-full-test-set/state}  # each unfinished package's progress (zoo verify --state)
NAMES=${NAMES:-$(ls "$HUB")}
mkdir -p "$RUNS/packages" "$RECORDS"
current() {  # yes / no: the package's records cover the whole test set, are for the bytes it holds, and its INT8
  # has 7-bit weights (a failing check stops the script: set -e, each call assigned on its own)
  "$PYTHON" - "$1" <<'EOF'
import sys
from pathlib import Path
from ddzoo.package import WEIGHTS, read_verification, verification_status
from ddzoo.runtime.ort import SATURATION_FREE_WEIGHT, largest_int8_weight
package = Path(sys.argv[1])
if not (package / "verification.json").is_file():
    print("no")
    sys.exit(0)
whole = read_verification(package)["records"].get(WEIGHTS, {}).get("settings", {}).get("limit", 0) is None
matching = set(verification_status(package).values()) <= {"pass", "fail"}
int8 = package / "model.int8.onnx"
seven_bit = not int8.is_file() or largest_int8_weight(int8) <= SATURATION_FREE_WEIGHT
print("yes" if whole and matching and seven_bit else "no")
EOF
}
declares() {  # yes / no: the package declares threat models (adversarial training at a standard budget does)
  "$PYTHON" - "$1" <<'EOF'
import sys
from ddzoo.eval.threat import declared_threat_models
from ddzoo.package import read_config
print("yes" if declared_threat_models(read_config(sys.argv[1])) else "no")
EOF
}
for name in $NAMES; do
  pkg="$RUNS/packages/$name"
  state=$(current "$pkg")
  if [ "$state" = yes ]; then echo "== $name: verified on the whole test set"; continue; fi
  echo "== $name $(date -u +%H:%M:%S)"
  rm -rf "$pkg"
  $ZOO export "$HUB/$name/main" --out "$pkg"
  if [ -f "$RECORDS/$name.verification.json" ]; then
    cp "$RECORDS/$name.verification.json" "$pkg/verification.json"
    state=$(current "$pkg")
    if [ "$state" = yes ]; then echo "== $name: its saved record matches the export"; continue; fi
  fi
  cp "$HUB/$name/main/verification.json" "$pkg/"  # the checkpoint's strong records, kept for the same weights
  robust=(--robust 0)
  declared=$(declares "$pkg")
  if [ "$declared" = yes ]; then
    ls "$ADVERSARIALS/$name"/*.safetensors >/dev/null 2>&1 \
      || { echo "$name: no stored AutoAttack batches in $ADVERSARIALS/$name; it would be attacked anew" >&2; exit 2; }
    robust=(--robust 1000 --adversarials "$ADVERSARIALS/$name" --trust-adversarials)
  fi
  # exit code 3 = an artifact failed the gate; its record stays in verification.json, publish leaves it out
  $ZOO verify "$pkg" --square "$SQUARE" --strong 0 "${robust[@]}" --plot "$RUNS/packages/$name.verify.png" \
    --state "$STATES/$name" || [ $? -eq 3 ]
  cp "$pkg/verification.json" "$RECORDS/$name.verification.json.tmp"
  mv "$RECORDS/$name.verification.json.tmp" "$RECORDS/$name.verification.json"
done
[ "${PUBLISH:-1}" = 1 ] || exit 0
incomplete=0
for family in lenet-mnist lenet-fashion-mnist resnet-cifar10; do  # a family once all of it is done: each card compares it
  members=$(ls "$HUB" | grep "^$family-" || true)
  pending=""
  for name in $members; do
    state=$(current "$RUNS/packages/$name")
    [ "$state" = yes ] || pending="$pending $name"
  done
  [ -z "$pending" ] || { echo "$family: not published yet; not verified on the whole test set:" $pending; incomplete=1; continue; }
  for name in $members; do
    compare=()
    for peer in $members; do [ "$peer" = "$name" ] || compare+=(--compare "$RUNS/packages/$peer"); done
    $ZOO publish "$RUNS/packages/$name" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified "${compare[@]}"
  done
done
exit "$incomplete"  # 1 while a family waits for its records
