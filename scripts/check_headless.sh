#!/usr/bin/env bash
# Checks that the engine and the headless `hearth` (no `studio` feature) depend on no GUI or
# desktop-notification crate and that the headless binary links no X11, Wayland or GL library.
set -euo pipefail
cd "$(dirname "$0")/.."
gui='^(egui|eframe|egui_plot|egui-winit|egui_glow|winit|rfd|glutin|wayland-client|x11rb|x11-dl|notify-rust|zbus|dbus)$'
for args in "-p hearth-engine" "-p hearth --no-default-features --features libtorch"; do
  # shellcheck disable=SC2086
  found=$(cargo tree $args -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u | grep -E "$gui" || true)
  if [ -n "$found" ]; then
    echo "check_headless: cargo tree $args -e normal lists GUI crates: $found" >&2
    exit 1
  fi
done
target="${CARGO_TARGET_DIR:-target}"
out=$(mktemp -d)
# Built with the whole workspace selected so that dependencies keep the features of the default
# build (and are not compiled a second time); only the `hearth` binary itself lacks the studio.
# The headless binary is the one for cluster nodes, so it carries MPI (scripts/check_mpi.sh
# trains with it under mpirun).
cargo build --workspace --no-default-features --features libtorch,mpi --bins
cp "$target/debug/hearth" "$out/hearth"
cp "$target/debug/hearth" "$target/hearth-headless"
libs=$(ldd "$out/hearth")
if echo "$libs" | grep -E 'libX11|libwayland|libGL|libEGL|libxkbcommon'; then
  echo "check_headless: the headless hearth links a GUI library (above)" >&2
  exit 1
fi
"$out/hearth" --help >/dev/null
echo "check_headless: engine and headless hearth are GUI-free ($(echo "$libs" | wc -l) shared libraries, none of X11/Wayland/GL)"
rm -rf "$out"
