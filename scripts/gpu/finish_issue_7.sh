#!/usr/bin/env bash
# Next GPU call: FlexAttention (compiled) on the peers workloads (issue 7), its GPU checks first, then
# the sweep's GPU test (L2 flush, CUDA graphs) and the peers' GPU tests.
source scripts/gpu/setup.sh
pack() { tar -czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
mkdir -p $OUT/flex
D="--distribution sft_long_prompt --distribution short_prefix_long_response --distribution no_causal"
timeout 420 python -m cli sweep --suite default $D --tokens 16384 --tokens 65536 --variant prefix_rows_add \
  --peer flex_attention --peer fa3_bidir_bound --time-cap 3 --phase-reps 3 --out $OUT/flex/run --progress \
  > $OUT/flex/sweep.log 2>&1; echo "flex rc=$?"; pack flex
timeout 150 python -m pytest -q -m gpu tests/test_sweep_gpu.py tests/test_peers.py > $OUT/gpu_tests.log 2>&1
echo "gpu tests rc=$?"
