#!/usr/bin/env bash
# Multi-process training over MPI, with the headless binary that scripts/check_headless.sh
# builds (with the `mpi` feature) and leaves in the target folder:
#  1. `mpirun -n 2 hearth train --distributed` with global batch 16 logs the same training loss
#     at every step as one process with batch 16 (relative 1e-4) and prints the same final line;
#  2. a rank killed mid-run ends the job with mpirun naming the lost rank, and the run folder
#     reads and resumes from its last checkpoint in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${HEARTH_MPI_BIN:-$target/hearth-headless}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpi=(mpirun --allow-run-as-root --oversubscribe -n 2)
shape=(--layers 2 --heads 2 --width 64 --context 32 --dropout 0 --seed 5 --threads 1)

"$bin" train "${shape[@]}" --steps 50 --batch 16 --eval-interval 25 --out "$work/one" 2>/dev/null |
  tail -1 >"$work/one.final"
"${mpi[@]}" "$bin" train "${shape[@]}" --steps 50 --batch 16 --eval-interval 25 \
  --distributed --out "$work/two" 2>"$work/two.err" | tail -1 >"$work/two.final"
python3 - "$work" <<'EOF'
import sqlite3, sys
work = sys.argv[1]
def losses(run):
    db = sqlite3.connect(f"{work}/{run}/run.sqlite")
    return [row[0] for row in db.execute("SELECT train_loss FROM steps ORDER BY step")]
one, two = losses("one"), losses("two")
assert len(one) == len(two) == 50, (len(one), len(two))
worst = max(abs(a - b) / abs(a) for a, b in zip(one, two))
assert worst < 1e-4, f"per-step training loss differs by up to {worst:.2e} (relative)"
final = [open(f"{work}/{run}.final").read().split() for run in ("one", "two")]
key = lambda line: [f for f in line if f.startswith(("step=", "train_loss=", "val_loss="))]
assert final[0][0] == "final" and key(final[0]) == key(final[1]), final
print(f"check_mpi: 2 ranks match 1 process at every step (worst relative difference {worst:.1e}); {' '.join(key(final[1]))}")
EOF

# A rank killed mid-run: the other rank is ended, mpirun names the lost rank, and the run folder
# resumes from its last checkpoint in one process.
("${mpi[@]}" "$bin" train --layers 1 --heads 1 --width 16 --context 16 --batch 4 --threads 1 \
  --steps 1500 --distributed --out "$work/killed" >"$work/killed.log" 2>&1 || true) &
launcher=$!
for _ in $(seq 600); do
  [ -f "$work/killed/checkpoints/step-000500.bpk" ] && break
  sleep 0.1
done
for pid in $(pgrep -f -- "--out $work/killed"); do
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
    kill -9 "$pid"
  fi
done
wait "$launcher"
grep -q "process rank 1 .* exited on signal 9" "$work/killed.log" || {
  cat "$work/killed.log"
  echo "check_mpi: mpirun did not name the lost rank" >&2
  exit 1
}
if pgrep -f -- "--out $work/killed" >/dev/null; then
  echo "check_mpi: a rank outlived the one that was killed" >&2
  exit 1
fi
"$bin" resume --run "$work/killed" 2>/dev/null | tail -1 | grep -q '^final step=1500 ' || {
  echo "check_mpi: the killed run did not resume to its last step" >&2
  exit 1
}
echo "check_mpi: a killed rank ends the job naming it; the run resumed to step 1500"
