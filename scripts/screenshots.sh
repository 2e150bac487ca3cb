#!/usr/bin/env bash
# Screenshots of the studio's pages for the README, taken from the real app under Xvfb:
# assets/screenshots/{dataset,setup,monitor,compare,shortcuts}.png. It trains two short runs
# (next-token and GRIT) with the CLI, adds a damaged copy of one, opens the studio on that
# project, starts a third run from Run setup and switches pages with the keyboard shortcuts.
# Run through `make screenshots` (which builds the studio first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${HEARTH_BIN:-$target/debug/hearth}"
out="$root/assets/screenshots"
display="${SCREENSHOT_DISPLAY:-:97}"

missing=()
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v xdotool >/dev/null || missing+=(xdotool)
command -v import >/dev/null || missing+=(imagemagick)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
cleanup() {
  [ -n "${studio:-}" ] && kill "$studio" 2>/dev/null || true
  [ -n "${xvfb:-}" ] && kill "$xvfb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A fresh home: no saved preferences, no notification service, the default project elsewhere.
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config"
mkdir -p "$HOME"
project="$work/project"
shape=(--layers 2 --heads 2 --width 64 --context 64 --batch 12 --eval-interval 50 --threads 2)
"$bin" --project "$project" train --name shakespeare-like --steps 400 "${shape[@]}" >/dev/null
"$bin" --project "$project" train --name grit-joint --objective grit --steps 300 "${shape[@]}" >/dev/null
# A copy of the first run whose history is overwritten: listed as damaged beside the others.
first=$(ls -d "$project"/runs/*shakespeare-like | head -1)
cp -r "$first" "$first-copy"
sed -i 's/"name": "shakespeare-like"/"name": "copied-run"/' "$first-copy/spec.json"
head -c 65536 /dev/urandom >"$first-copy/run.sqlite"
rm -f "$first-copy"/run.sqlite-wal "$first-copy"/run.sqlite-shm

Xvfb "$display" -screen 0 1360x860x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 1
export DISPLAY="$display"
"$bin" --project "$project" >"$work/studio.log" 2>&1 &
studio=$!
for _ in $(seq 60); do
  window=$(xdotool search --name '^Hearth$' 2>/dev/null | head -1 || true)
  [ -n "$window" ] && break
  sleep 0.5
done
[ -n "${window:-}" ] || { cat "$work/studio.log"; echo "the studio window did not open" >&2; exit 1; }
xdotool windowmove "$window" 0 0 windowsize "$window" 1360 860 windowfocus "$window"
sleep 2

mkdir -p "$out"
key() { xdotool key --window "$window" "$@"; sleep 1.5; }
shot() { import -window root "$out/$1.png"; echo "$out/$1.png"; }

key ctrl+1
shot dataset
key ctrl+2
shot setup
# Start a run from the draft; the monitor follows it live.
key ctrl+Return
sleep 20
shot monitor
# Tick the two finished runs (the compare boxes at the left of the run list), then compare
# them with the live one (C ticks the monitored run).
for y in ${COMPARE_TICKS_Y:-141 193}; do
  xdotool mousemove --window "$window" 16 "$y" click 1
  sleep 0.5
done
key c
sleep 2
shot compare
key F1
shot shortcuts
key Escape
