# The README's commands. Each one installs LibTorch into the cache folder first (once).
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/hearth/target
ENV := source scripts/env.sh &&

.PHONY: run test bench libtorch flex headless package screenshots train-shakespeare
run:
	$(ENV) cargo run --bin hearth

test:
	$(ENV) bash scripts/test.sh

bench:
	$(ENV) cargo run --bin hearth -- bench

libtorch:
	$(ENV) python -c "import torch; print('torch', torch.__version__, torch.__file__)"

# Pure-Rust build without LibTorch (Flex backend only), with the studio.
flex:
	cargo run --no-default-features --features studio --bin hearth

# Headless command line: LibTorch, no studio, no GUI library linked (for cluster nodes).
headless:
	$(ENV) cargo build --no-default-features --features libtorch --bin hearth

# Debian packages in $(CARGO_TARGET_DIR)/debian/: `hearth` (studio + LibTorch on the CPU, its
# libraries bundled in /usr/lib/hearth) and `hearth-flex` (pure-Rust Flex backend). One of them:
# `make package PACKAGE=libtorch` or `PACKAGE=flex`.
package:
	$(ENV) bash scripts/package.sh $(or $(PACKAGE),all)

# The README's pictures: each page of the real studio under Xvfb, into assets/screenshots/.
screenshots:
	$(ENV) cargo build --workspace --bin hearth && bash scripts/screenshots.sh
