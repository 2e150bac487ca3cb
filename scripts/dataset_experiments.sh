#!/usr/bin/env bash
# The data-recipe experiments: the retrieval-aware grid on the API zoo, symbol tuning against a
# natural-label control, and LinkBERT relation accuracy. Every number is printed by `hearth`
# itself; results go to $OUT (default: a temporary folder). Runs two trainings at a time, one
# thread each. Usage: scripts/dataset_experiments.sh [raft|symbols|linkbert|all]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hearth/target}"
cargo build --quiet
H="$CARGO_TARGET_DIR/debug/hearth"
OUT="${OUT:-$(mktemp -d)}"
P="$OUT/project"
WHAT="${1:-all}"
STEPS="${STEPS:-600}"
echo "results in $OUT"

model=(--layers 4 --heads 4 --width 128 --lr 2e-3 --min-lr 2e-4 --warmup 50 --threads 1
       --backend libtorch --eval-batches 4)

if [[ $WHAT == raft || $WHAT == all ]]; then
  # Training sets: no documents (closed book), the right document only, RAFT (P=0.8, one
  # distractor).
  for cfg in "closed 0 0" "oracle 1 0" "raft 0.8 1"; do
    set -- $cfg
    "$H" --project "$P" dataset --name "zoo-$1" --source "gen:api_zoo#${ZOO:-60}#1" \
      --transform raft --p-oracle "$2" --distractors "$3" --split random --val-fraction 0.25 --seed 1 \
      --context 256 --batch 8 --preview 1 > "$OUT/dataset-zoo-$1.txt"
  done
  train() {
    "$H" --project "$P" train --dataset "$P/datasets/zoo-$1" --name "zoo-$1" --out "$P/runs/zoo-$1" \
      "${model[@]}" --context 256 --batch 8 --steps "$STEPS" --eval-interval 200 \
      > "$OUT/train-zoo-$1.txt" 2>&1
  }
  train closed & train oracle & wait
  train raft
  for run in closed oracle raft; do
    for cond in no-document right-document distractors-only edited; do
      # Every run is scored on the RAFT recipe's evaluation set (the same questions).
      printf '%s %s ' "$run" "$cond"
      "$H" eval --run "$P/runs/zoo-$run" --raft "$cond" --limit 400 2>/dev/null | tail -1
    done
  done | tee "$OUT/raft-grid.txt"
fi

if [[ $WHAT == symbols || $WHAT == all ]]; then
  for labels in symbols natural; do
    "$H" --project "$P" dataset --name "tasks-$labels" --source "gen:class_tasks#300#1" \
      --transform symbols --labels "$labels" --count 8000 --context 96 --batch 16 \
      --preview 1 > "$OUT/dataset-tasks-$labels.txt"
  done
  train_sym() {
    "$H" --project "$P" train --dataset "$P/datasets/tasks-$1" --name "tasks-$1" \
      --out "$P/runs/tasks-$1" "${model[@]}" --context 96 --batch 16 --steps "$STEPS" \
      --eval-interval 200 > "$OUT/train-tasks-$1.txt" 2>&1
  }
  train_sym symbols & train_sym natural & wait
  for run in symbols natural; do
    for labels in natural symbols flipped; do
      printf '%s-trained %s ' "$run" "$labels"
      "$H" eval --run "$P/runs/tasks-$run" --labels "$labels" --limit 400 2>/dev/null | tail -1
    done
  done | tee "$OUT/symbols.txt"
fi

if [[ $WHAT == linkbert || $WHAT == all ]]; then
  "$H" --project "$P" dataset --name links --source "gen:linked_docs#160#1" --transform linkbert \
    --count 6000 --split random --seed 1 --context 192 --batch 16 --preview 1 \
    > "$OUT/dataset-links.txt"
  "$H" --project "$P" train --dataset "$P/datasets/links" --name links --out "$P/runs/links" \
    "${model[@]}" --objective linkbert --context 192 --batch 16 --steps "$STEPS" \
    --eval-interval 200 2>&1 | tee "$OUT/train-links.txt" | tail -1
  "$H" eval --run "$P/runs/links" 2>/dev/null | tail -1 | tee "$OUT/linkbert.txt"
fi
