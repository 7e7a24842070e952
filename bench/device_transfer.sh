#!/usr/bin/env bash
# bench/transfer_gpu.py on the device machine (see its docstring). Prepare here first:
#   .venv/bin/python bench/device_prepare.py
# then run through the device tool, carrying .gpu and synth/protos/generation_config_pb2.py:
#   bash bench/device_transfer.sh [--arms=... --num_images=... --train_deadline_s=...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
nproc; nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python3 bench/transfer_gpu.py --real=.gpu/real --work=/tmp/transfer-gpu --out="$OUT" "$@" 2>&1 | tee "$OUT/transfer_gpu.log"
