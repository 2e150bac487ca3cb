#!/usr/bin/env bash
# The CUDA check, one script for a GPU machine (under 8 minutes): builds, trains on
# LibTorch CUDA (one device, then two replicas when two GPUs are present), and times the
# nanoGPT GPU configuration (6 layers, 6 heads, 384 wide, block 256, batch 64) for a few hundred
# steps on LibTorch CUDA against PyTorch eager on the same GPU. The last line is
# `ratio cuda libtorch/pytorch=<x>` (PyTorch's milliseconds per step over Hearth's; above 1 is
# faster). Without a CUDA device it says so, skips the GPU parts and ends with
# `ratio cuda libtorch/pytorch=skipped`.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hearth/target}"
steps="${GPU_CHECK_STEPS:-300}"
gpus=$(python -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)
if [ "${gpus:-0}" -lt 1 ]; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is false): skipping the CUDA build, tests and timing"
  echo "ratio cuda libtorch/pytorch=skipped"
  exit 0
fi
python -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0), "torch", torch.__version__, "CUDA", torch.version.cuda)'
cargo build --workspace --bins || { echo "gpu_check: build failed"; exit 1; }
bin="$CARGO_TARGET_DIR/debug/hearth"
# The fused training ops against Burn's decomposed ops, on the GPU.
HEARTH_TEST_CUDA=1 cargo test -p hearth-engine --test fused 2>&1 | grep -E "^test |test result" \
  || echo "gpu_check: the fused-op parity tests failed on CUDA"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shape=(--layers 6 --heads 6 --width 384 --context 256 --batch 64 --dropout 0)
# A short CUDA run must train: the loss goes down and the run ends with its final line.
"$bin" train --backend libtorch-cuda --steps 60 --eval-interval 30 --eval-batches 2 \
  --layers 2 --heads 2 --width 64 --context 64 --batch 16 --out "$work/smoke" 2>&1 | tail -n 3
if [ "$gpus" -ge 2 ]; then
  "$bin" train --backend libtorch-cuda --devices cuda:0,cuda:1 --steps 30 --eval-interval 30 \
    --eval-batches 2 --layers 2 --heads 2 --width 64 --context 64 --batch 16 \
    --out "$work/replicas" 2>&1 | tail -n 1
fi
line=$("$bin" train --backend libtorch-cuda --steps "$steps" --eval-interval "$steps" \
  --eval-batches 1 "${shape[@]}" --out "$work/timed" 2>&1 | grep '^final ')
echo "gpu_check: hearth $line"
tps=$(echo "$line" | sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
hearth_ms=$(python -c "print(1000.0 * 64 * 256 / float('$tps'))")
py=$(python scripts/bench_pytorch.py --device cuda --steps "$steps" --warmup 10 \
  --layers 6 --heads 6 --width 384 --block 256 --batch 64 | tail -n 1)
echo "gpu_check: pytorch $py"
pytorch_ms=$(python -c "import json,sys; print(json.loads(sys.argv[1])['step_ms'])" "$py")
echo "gpu_check: ms per step: hearth $hearth_ms, pytorch $pytorch_ms"
python -c "print('ratio cuda libtorch/pytorch=%.3f' % (float('$pytorch_ms') / float('$hearth_ms')))"
