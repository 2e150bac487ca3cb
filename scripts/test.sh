#!/usr/bin/env bash
# The whole test suite: formatting, then every test (unit, engine, store, CLI, UI).
# Run through `make test`, which installs LibTorch first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo test --all-targets
