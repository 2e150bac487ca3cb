#!/usr/bin/env bash
# Debian packages the test suite needs beyond a Rust toolchain and Python: OpenMPI (the `mpi`
# feature and the multi-process tests) and libclang (the MPI bindings are generated at build
# time). Installs only what is missing; needs root (as CI runs) or sudo.
set -euo pipefail
needed=(libopenmpi-dev openmpi-bin libclang-dev)
missing=()
for p in "${needed[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
