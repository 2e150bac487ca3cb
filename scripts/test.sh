#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (unit, engine, store, CLI, UI), then the
# headless build's promise: no GUI crate in the engine or the headless binary, and no X11,
# Wayland or GL library linked. Run through `make test`, which installs LibTorch first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
bash scripts/check_headless.sh
bash scripts/check_package.sh
