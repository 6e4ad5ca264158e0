#!/usr/bin/env bash
# Copy the Deep Defense candidates' resumable state from runs/robust/dd into this folder (restore.sh brings it
# back): a finished run's config.json and model.safetensors, an unfinished one's training_state.safetensors, and
# every held-out / epoch-1 / stopped / candidates / eval file, and the candidates' stored AutoAttack batches. Then `git add -f resume/issue27-robust` and commit.
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
  [ ! -d "$run/autoattack" ] || cp -r "$run/autoattack" "$here/$name/"  # stored AutoAttack batches (dd_testset.sh)
done
find runs/robust/dd -maxdepth 1 -type f ! -name '*.tmp' -exec cp {} "$here/" \;
du -sh "$(dirname "$0")"
