#!/usr/bin/env bash
# One sweep spread over every GPU of the host by torchrun; the ranks merge into one results.jsonl.
# Usage: OUT=runs/h100 bash scripts/gpu/torchrun.sh [GPUS]   (default: 2)
source scripts/gpu/setup.sh
python -m torch.distributed.run --nproc-per-node "${1:-2}" -m cli sweep --suite default --tokens 16384 --time-cap 2 \
  --out "$OUT/torchrun" --no-progress 2>&1 | tee "$OUT/torchrun.log"
