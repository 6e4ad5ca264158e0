#!/usr/bin/env bash
# Ship the baselines chosen by scripts/baseline_tune.py (issue 19) for one family: copy each chosen checkpoint to
# $RUNS/$FAMILY-at and $RUNS/$FAMILY-parseval, evaluate them on the test set once (scripts/strong_results.sh),
# export + verify them into the bundled hub, then republish the whole family so every card compares all four.
#   ZOO_DATA_DIR=../shared/data FAMILY=lenet-fashion-mnist TUNED=runs/baselines-fashion bash scripts/ship_baselines.sh
set -euo pipefail
RUNS=${RUNS:-runs/final}
PYTHON=${PYTHON:-python}
: "${FAMILY:?FAMILY=lenet-mnist, lenet-fashion-mnist or resnet-cifar10}" "${TUNED:?TUNED=the baseline_tune.py --runs folder}"
"$PYTHON" - "$TUNED/chosen.json" "$RUNS" "$FAMILY" <<'PY'
import json, pathlib, shutil, sys
chosen, runs, family = json.loads(pathlib.Path(sys.argv[1]).read_text()), pathlib.Path(sys.argv[2]), sys.argv[3]
for recipe, suffix in (("adversarial", "at"), ("parseval", "parseval")):
    source, target = pathlib.Path(chosen[recipe]["checkpoint"]), runs / f"{family}-{suffix}"
    target.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", "model.safetensors"):
        shutil.copyfile(source / file, target / file)
    print(f"{target} <- {source} (held-out accuracy {chosen[recipe]['accuracy']:.4f}, matched: {chosen[recipe]['matched']})")
PY
NAMES="$FAMILY-at $FAMILY-parseval" RUNS=$RUNS bash scripts/strong_results.sh
NAMES="$FAMILY-at $FAMILY-parseval" RUNS=$RUNS bash scripts/build_bundled_hub.sh
PUBLISH_ONLY=1 NAMES="$FAMILY-ref $FAMILY-dd $FAMILY-at $FAMILY-parseval" RUNS=$RUNS bash scripts/build_bundled_hub.sh
