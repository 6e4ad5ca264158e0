#!/usr/bin/env bash
# Copy the Deep Defense candidates' resumable state from runs/robust/dd into this folder (restore.sh brings it
# back): a finished run's config.json and model.safetensors, an unfinished one's training_state.safetensors, and
# every held-out / epoch-1 / stopped / candidates / eval / shipping file, the candidates' stored AutoAttack batches, and
# R's records and batches (runs/robust/*.json, runs/robust/R/autoattack). Then `git add -f resume/issue27-robust` and commit.
set -euo pipefail
here=$(dirname "$0")/runs-robust/dd
mkdir -p "$here"
for run in runs/robust/dd/*/; do
  name=$(basename "$run")
  rm -rf "${here:?}/$name"
  mkdir -p "$here/$name"
  if [ -s "$run/config.json" ]; then
    cp "$run/config.json" "$run/model.safetensors" "$here/$name/"
  elif [ -s "$run/training_state.safetensors" ]; then
    cp "$run/training_state.safetensors" "$here/$name/"
  fi
  # stored AutoAttack batches (dd_testset.sh) of records not yet written: R's budget until NAME.eval.json exists,
  # the smaller budgets until NAME.eval-small.json does
  case $name in *-l2-*) budget=-L2-0.5- ;; *) budget=-Linf-0.03137254901960784- ;; esac
  for batch in "$run"/autoattack/*.safetensors; do
    [ -e "$batch" ] || continue
    if [[ $batch == *"$budget"* ]]; then [ -s "${run%/}.eval.json" ] && continue
    else [ -s "${run%/}.eval-small.json" ] && continue; fi
    mkdir -p "$here/$name/autoattack" && cp "$batch" "$here/$name/autoattack/"
  done
done
find runs/robust/dd -maxdepth 1 -type f ! -name '*.tmp' -exec cp {} "$here/" \;
# R's records and AutoAttack batches made by dd_testset.sh (the session-14/15 ones are here already)
find runs/robust -maxdepth 1 -type f -name '*.json' -exec cp {} "$here/../" \;
for r in runs/robust/resnet-cifar10-at-*/autoattack; do
  mkdir -p "$here/../$(basename "$(dirname "$r")")/autoattack"
  cp -n "$r"/*.safetensors "$here/../$(basename "$(dirname "$r")")/autoattack/"
done
du -sh "$(dirname "$0")"
