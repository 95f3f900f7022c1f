#!/bin/bash
# When does MOVE's external feature survive query stealing? Runs the red-team harness's
# stealing rows (no adaptive, multi-stage or zero-shot rows; 4 independents) once per setting
# and gathers the per-attack p-values into out/redteam-study/study.md. Settings vary one knob
# of the full configuration at a time. Each setting trains its own victim and bundle (about
# 15 minutes on 2 cores; --epochs=8 about twice that). Usage:
#   tools/redteam_study.sh                      # every setting below
#   tools/redteam_study.sh "--style_strength=0.5" "--gamma=0.2"   # chosen settings
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //redteam:move_redteam
settings=("$@")
if [ ${#settings[@]} -eq 0 ]; then
  settings=("--style_strength=0.5" "--gamma=0.2" "--epochs=8")
fi
mkdir -p out/redteam-study
for s in "${settings[@]}"; do
  name=$(echo "$s" | tr -c 'a-zA-Z0-9.\n' '_')
  echo "== setting $s"
  bazel-bin/redteam/move_redteam --config=full $s --adaptive=false --multi_stage=false --zero_shot=false --shadow=none --decoy_calibration=0 \
      --independents=4 --out="out/redteam-study/$name" --cache=out/redteam-cache > "out/redteam-study/$name.log" 2>&1
done
baseline=()
if [ -f out/redteam/results.json ]; then baseline=("--baseline=out/redteam"); fi
python3 tools/redteam_study_table.py out/redteam-study "${baseline[@]}" "${settings[@]}" > out/redteam-study/study.md
cat out/redteam-study/study.md
