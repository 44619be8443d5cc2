#!/usr/bin/env bash
# A short real run of every training/evaluation command on SynthFace (minutes on a 2-core CPU).
# The numbers it produces show the commands work end to end; they are not trained results
# (96 training faces, 2 epochs). Usage: bash scripts/short_run.sh [DATA] [OUT]
set -euo pipefail
D=${1:-../shared/data/synthface}
R=${2:-runs/short}
S=".venv/bin/smfd"
small=(--set epochs=2 --set data.train_limit=96 --set data.val_limit=16)
tiny=(--set epochs=1 --set data.train_limit=32 --set data.val_limit=8)
# re-running the script resumes: finished runs are kept, unfinished ones continue from last.pt
train() {  # TASK OUT ARGS...
    if [ -f "$2/last.pt" ]; then $S train "$1" --resume "$2"; else $S train "$1" -o "$2" "${@:3}"; fi
}
train mask "$R/mask" --config configs/cpu.yaml --data "$D" "${small[@]}"
train deblur "$R/deblur" --config configs/cpu.yaml --data "$D" --mask-source "generator:$R/mask" "${small[@]}"
$S eval --model "$R/deblur" --data "$D" --mask-source "generator:$R/mask" --limit 50 --identity --overwrite
$S eval --model input --data "$D" --split-file "$R/deblur/split.json" --limit 50 --identity -o "$R/eval-input" --overwrite
$S eval --model "$R/mask" --data "$D" --limit 50 --overwrite
$S cv deblur --config configs/cpu.yaml --data "$D" -o "$R/cv" --folds 5 "${tiny[@]}" --test-limit 20
$S ablate --config configs/cpu.yaml --data "$D" -o "$R/ablate" "${tiny[@]}" --test-limit 20
$S report curves "$R/mask" "$R/deblur" -o "$R/curves.png"
$S report features --model "$R/deblur" --image src/smfd/assets/samples/images/00004.jpg \
    --mask-source "generator:$R/mask" -o "$R/features.png"
