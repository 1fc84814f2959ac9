#!/usr/bin/env bash
# Last GPU call of the 3rd session: the GPU tests not yet run at this commit (op, profile torch tool), and a
# longer look at the one noisy prediction cell (prefix_fills_context at 65536 tokens: 8191-token sequences).
source scripts/gpu/setup.sh
pack() { tar -czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
mkdir -p $OUT/final
timeout 80 python -m cli sweep --distribution prefix_fills_context --tokens 65536 --variant zeros_always \
  --variant guarded_passthrough --variant prefix_rows_add --time-cap 60 --max-reps 1000 \
  --out $OUT/final/pfc64k --no-progress > $OUT/final/pfc64k.log 2>&1; echo "pfc64k rc=$?"
PREFIXBENCH_GPU_ERRORS=$OUT/final/gpu_errors.json timeout 240 python -m pytest -q -m gpu tests/test_op_gpu.py \
  tests/test_profile_gpu.py > $OUT/final/gpu_tests.log 2>&1; echo "gpu tests rc=$?"
pack final
