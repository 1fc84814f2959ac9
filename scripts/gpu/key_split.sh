#!/usr/bin/env bash
# key_split and auto on the H100: their GPU tests, validation on FA3, and a sweep against prefix_rows_add.
# Run from the repository root with PYTHONPATH holding the unpacked FA3 build and this checkout; writes $OUT/key_split.
set -o pipefail
export PYTHONUNBUFFERED=1 COLUMNS=160
R=$OUT/key_split
mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $R/gpu.txt 2>&1
timeout 120 python -m cli sweep --backend fa3 --device cuda --variant prefix_rows_add --variant key_split --variant auto \
  --distribution sft_long_prompt --distribution short_prefix_long_response --distribution no_causal \
  --tokens 16384 --tokens 65536 --heads 16 --head-dim 128 --dtype bfloat16 --time-cap 4 --phase-reps 3 \
  --no-progress --out $R/sweep > $R/sweep.log 2>&1; echo "sweep rc=$?"
python scripts/key_split_summary.py $R/sweep/results.jsonl | tee $R/summary.txt
timeout 60 python -m cli validate --backend fa3 --device cuda --variant key_split --variant auto --spare-workers 1 \
  --out $R/val > $R/validate.log 2>&1; echo "validate rc=$?"
tail -3 $R/validate.log
timeout 110 python -m pytest -q -m gpu tests/test_key_split_gpu.py tests/test_op_gpu.py \
  -k "key_split or auto or writes_the_rows" > $R/gpu_tests.log 2>&1; echo "gpu tests rc=$?"
tail -15 $R/gpu_tests.log
