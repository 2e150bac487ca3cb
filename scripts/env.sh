# Sourced by the Makefile and CI: installs LibTorch (the PyPI wheel torch==2.9.0, which tch 0.22
# expects) and transformers (for the Hugging Face parity tests) into a cache folder once, then
# exports what the build needs to find it.
# Override the folder with HEARTH_CACHE.
set -e
HEARTH_CACHE="${HEARTH_CACHE:-$HOME/.cache/hearth}"
HEARTH_VENV="$HEARTH_CACHE/torch-venv"
if [ ! -f "$HEARTH_VENV/.torch-2.9.0-ok" ]; then
  echo "hearth: installing LibTorch (torch==2.9.0 from PyPI) into $HEARTH_VENV (once)" >&2
  mkdir -p "$HEARTH_CACHE"
  python3 -m venv "$HEARTH_VENV"
  "$HEARTH_VENV/bin/pip" install --quiet --disable-pip-version-check torch==2.9.0 numpy
  touch "$HEARTH_VENV/.torch-2.9.0-ok"
fi
# The Hugging Face export/import parity tests (tests/hf.rs) load exports with transformers in
# the same environment; a separate marker so existing environments get it once.
if [ ! -f "$HEARTH_VENV/.transformers-5.24.0-ok" ]; then
  echo "hearth: installing transformers==5.24.0 and safetensors==0.8.0 into $HEARTH_VENV (once)" >&2
  "$HEARTH_VENV/bin/pip" install --quiet --disable-pip-version-check transformers==5.24.0 safetensors==0.8.0
  touch "$HEARTH_VENV/.transformers-5.24.0-ok"
fi
# The BERT parity tests (tests/bert.rs) compare with sentence-transformers, pinned here.
if [ ! -f "$HEARTH_VENV/.sentence-transformers-6.3.0-ok" ]; then
  echo "hearth: installing sentence-transformers==6.3.0 into $HEARTH_VENV (once)" >&2
  "$HEARTH_VENV/bin/pip" install --quiet --disable-pip-version-check sentence-transformers==6.3.0 \
    transformers==5.24.0 torch==2.9.0
  touch "$HEARTH_VENV/.sentence-transformers-6.3.0-ok"
fi
# The decoder tests (tests/llama.rs) read GGUF files with the `gguf` package, load GGUF with
# transformers (which needs `accelerate` for it) and check exported LoRA adapters with `peft`.
if [ ! -f "$HEARTH_VENV/.peft-gguf-ok" ]; then
  echo "hearth: installing peft, gguf and accelerate into $HEARTH_VENV (once)" >&2
  "$HEARTH_VENV/bin/pip" install --quiet --disable-pip-version-check peft==0.21.2 gguf==0.19.0 \
    accelerate==1.16.0 transformers==5.24.0 torch==2.9.0
  touch "$HEARTH_VENV/.peft-gguf-ok"
fi
export VIRTUAL_ENV="$HEARTH_VENV"
export PATH="$HEARTH_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK="${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
set +e
