#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (unit, engine, store, CLI, UI, property
# tests over the parsers), then the headless build's promise (no GUI crate in the engine or the
# headless binary, no X11, Wayland or GL library linked), multi-process training over MPI, and
# the Debian package. Run through `make test`, which installs LibTorch first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_system_packages.sh
# The Hugging Face parity tests must run here (scripts/env.sh installed transformers).
export HEARTH_REQUIRE_TRANSFORMERS=1
# Pretrained weights for the BERT tests (fetched once into the cache); required here.
bash scripts/fetch_fixtures.sh
export HEARTH_REQUIRE_FIXTURES=1
cargo fmt --all -- --check
# The `mpi` feature too, so the MPI code is linted (dependencies keep their features).
cargo clippy --workspace --all-targets --features mpi -- -D warnings
cargo test --workspace --all-targets
bash scripts/check_headless.sh
bash scripts/check_mpi.sh
bash scripts/check_package.sh
