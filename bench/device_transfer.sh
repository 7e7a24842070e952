#!/usr/bin/env bash
# bench/transfer_gpu.py on the device machine (see its docstring). Prepare here first:
#   .venv/bin/python bench/device_prepare.py
# then run through the device tool, carrying .gpu and synth/protos/generation_config_pb2.py:
#   bash bench/device_transfer.sh [--arms=... --num_images=... --train_deadline_s=...]
# or, for the learning curve of real photos mixed in (bench/real_mix_gpu.py):
#   bash bench/device_transfer.sh --real_mix [--ks=0,5,10,20 --real_weight=0.2 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
nproc; nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
if [ "${1:-}" = "--real_mix" ]; then
  shift
  python3 bench/real_mix_gpu.py --real=.gpu/real --work=/tmp/real-mix-gpu --out="$OUT" "$@" 2>&1 | tee "$OUT/real_mix_gpu.log"
else
  python3 bench/transfer_gpu.py --real=.gpu/real --work=/tmp/transfer-gpu --out="$OUT" "$@" 2>&1 | tee "$OUT/transfer_gpu.log"
fi
