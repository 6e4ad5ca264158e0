#!/usr/bin/env bash
# Ship the robust ResNet-20s of issue 27: export each, verify it (DeepFool and the gate on the first $LIMIT test
# images like the other CIFAR-10 packages; AutoAttack at its threat model on the first $ROBUST, replayed from the
# batches `zoo eval --autoattack` stored, and Square there on every artifact), publish the passing artifacts into
# the bundled hub, and republish the CIFAR-10 family so every card compares all of it.
#   ZOO_DATA_DIR=../shared/data bash scripts/robust_ship.sh      (after runs/chain12.sh and runs/chain14.sh)
set -euo pipefail
RUNS=${RUNS:-runs/robust}
ZOO=${ZOO:-zoo}
LIMIT=${LIMIT:-2000}
ROBUST=${ROBUST:-1000}
HUB=${HUB:-ddzoo/hub}
NEW=${NEW:-resnet-cifar10-at-linf resnet-cifar10-at-l2}
FAMILY="resnet-cifar10-ref resnet-cifar10-dd resnet-cifar10-at resnet-cifar10-parseval $NEW"
mkdir -p "$RUNS/packages"
for name in $FAMILY; do  # the published packages, as the comparison's peers (folder name = model name)
  case " $NEW " in *" $name "*) ;; *) [ -d "$RUNS/packages/$name" ] || cp -r "$HUB/$name/main" "$RUNS/packages/$name" ;; esac
done
for name in $NEW; do
  pkg="$RUNS/packages/$name"
  [ -f "$pkg/verification.json" ] && grep -q '"robust"' "$pkg/verification.json" && continue  # verified: resume
  $ZOO export "$RUNS/$name" --out "$pkg" --reference "$HUB/resnet-cifar10-ref/main"  # trained from scratch: the
  # family reference's eps_ref gives the verification's l-inf grid, as for the fine-tuned members
  # exit code 3 = an artifact failed the gate; its record stays in verification.json, publish leaves it out
  $ZOO verify "$pkg" --limit "$LIMIT" --robust "$ROBUST" --adversarials "$RUNS/$name/autoattack" \
    --plot "$RUNS/packages/$name.verify.png" || [ $? -eq 3 ]
done
for name in $FAMILY; do
  compare=()
  for peer in $FAMILY; do [ "$peer" = "$name" ] || compare+=(--compare "$RUNS/packages/$peer"); done
  $ZOO publish "$RUNS/packages/$name" --repo "ddzoo/$name" --hub "$HUB" --skip-unverified "${compare[@]}"
done
