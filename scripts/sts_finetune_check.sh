#!/usr/bin/env bash
# The held-out check of CoSENT fine-tuning: imports all-MiniLM-L6-v2, scores it on the last 150
# pairs of an STS file, fine-tunes it with the cosent recipe (no other flags) on the other
# pairs, scores the fine-tune on the same 150 and fails unless Spearman rose by more than 0.003.
# Usage: scripts/sts_finetune_check.sh [STS_FILE] (default ../shared/data/stsb-dev.csv; skipped
# when absent). Needs scripts/env.sh sourced and scripts/fetch_fixtures.sh run; about 5 minutes
# on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
sts="${1:-../shared/data/stsb-dev.csv}"
if [ ! -f "$sts" ]; then
  echo "skipped: no STS file at $sts"
  exit 0
fi
bin="${HEARTH_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/hearth/target}/debug/hearth}"
minilm="${HEARTH_CACHE:-$HOME/.cache/hearth}/fixtures/all-MiniLM-L6-v2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -n -150 "$sts" >"$work/train.tsv"
tail -n 150 "$sts" >"$work/held-out.tsv"
"$bin" --project "$work/p" import --hf "$minilm" --name minilm --out "$work/p/runs/minilm" >/dev/null
spearman() { "$bin" eval --run "$1" --sts "$work/held-out.tsv" 2>/dev/null | tail -1 | sed 's/.*spearman=//'; }
before=$(spearman "$work/p/runs/minilm")
"$bin" --project "$work/p" train --init-from "$work/p/runs/minilm" --objective cosent \
  --pairs "$work/train.tsv" --name ft --out "$work/p/runs/ft" | tail -1
after=$(spearman "$work/p/runs/ft")
echo "held-out pairs=150 spearman zero-shot=$before fine-tuned=$after"
python3 -c "import sys; sys.exit(0 if $after > $before + 0.003 else 1)" ||
  { echo "fine-tuning did not raise held-out Spearman by more than 0.003" >&2; exit 1; }
