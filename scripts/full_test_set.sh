#!/usr/bin/env bash
# Issue 28 item 4: every bundled package verified on the whole test set, then republished with its family.
# Per package: a copy of the bundled one (a package without INT8 — resnet-cifar10-dd and -at, whose INT8 could not
# show a drop <= 0.5 pt on 2,000 images — is exported again from its own checkpoint with all three precisions),
# `zoo verify` on every test image with Square on $SQUARE. The stronger attacks (--strong) and the robust figures
# (--robust) are not run again: verify keeps the earlier records for the same bytes. Then each family is
# republished, every card comparing the others; an artifact that fails the gate stays out (--skip-unverified).
# Resumable: a package whose record already covers the whole test set is skipped.
#   ZOO_DATA_DIR=../shared/data bash scripts/full_test_set.sh    (NAMES="..." verifies a subset; publishing waits
#   until every bundled package is verified on the whole test set)
set -euo pipefail
RUNS=${RUNS:-runs/full}
ZOO=${ZOO:-zoo}
SQUARE=${SQUARE:-200}
HUB=${HUB:-ddzoo/hub}
NAMES=${NAMES:-$(ls "$HUB")}
mkdir -p "$RUNS/packages"
full() {  # the checkpoint's record covers the whole test set
  python - "$1/verification.json" <<'EOF'
import json, sys
record = json.load(open(sys.argv[1]))["records"].get("model.safetensors", {})
sys.exit(0 if record.get("settings", {}).get("limit", 0) is None else 1)
EOF
}
for name in $NAMES; do
  pkg="$RUNS/packages/$name"
  [ -f "$pkg/verification.json" ] && full "$pkg" && { echo "== $name: verified on the whole test set"; continue; }
  echo "== $name $(date -u +%H:%M:%S)"
  rm -rf "$pkg"
  if [ -f "$HUB/$name/main/model.int8.onnx" ]; then
    cp -r "$HUB/$name/main" "$pkg"
  else
    $ZOO export "$HUB/$name/main" --out "$pkg"
    cp "$HUB/$name/main/verification.json" "$pkg/"  # the checkpoint's strong records, kept for the same weights
  fi
  # exit code 3 = an artifact failed the gate; its record stays in verification.json, publish leaves it out
  $ZOO verify "$pkg" --square "$SQUARE" --strong 0 --robust 0 --plot "$RUNS/packages/$name.verify.png" || [ $? -eq 3 ]
done
[ "${PUBLISH:-1}" = 1 ] || exit 0
for name in $(ls "$HUB"); do full "$RUNS/packages/$name" || { echo "$name: not yet verified on the whole test set"; exit 1; }; done
for family in lenet-mnist lenet-fashion-mnist resnet-cifar10; do  # each card compares its whole family
  members=$(ls "$HUB" | grep "^$family-")
  for name in $members; do
    compare=()
    for peer in $members; do [ "$peer" = "$name" ] || compare+=(--compare "$RUNS/packages/$peer"); done
    $ZOO publish "$RUNS/packages/$name" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified "${compare[@]}"
  done
done
