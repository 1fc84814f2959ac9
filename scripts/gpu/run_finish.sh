#!/usr/bin/env bash
# Last GPU call: finish both default-suite runs with --resume (copies of earlier runs in .device/prev),
# validate the three remaining variants on the catalogue, and time the peers other than FlexAttention.
source scripts/gpu/setup.sh
pack() { tar -czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
(
  export CUDA_VISIBLE_DEVICES=0
  mkdir -p $OUT/peers
  timeout 130 python -m cli sweep --suite default --distribution sft_long_prompt \
    --distribution short_prefix_long_response --distribution no_causal --tokens 16384 --tokens 65536 \
    --peer sdpa_dense --peer fa3_causal_bound --peer fa3_bidir_bound --time-cap 2 --phase-reps 3 \
    --out $OUT/peers/run --no-progress > $OUT/peers/sweep.log 2>&1; echo "peers rc=$?"; pack peers
) &
(
  export CUDA_VISIBLE_DEVICES=1
  mkdir -p $OUT/resume $OUT/validate0
  cp -r .device/prev/sweepA $OUT/resume/sweepA; cp -r .device/prev/sweepB $OUT/resume/sweepB
  timeout 45 python -m cli sweep --resume --out $OUT/resume/sweepA --no-progress > $OUT/resume/A.log 2>&1; echo "A rc=$?"
  timeout 45 python -m cli sweep --resume --out $OUT/resume/sweepB --no-progress > $OUT/resume/B.log 2>&1; echo "B rc=$?"
  pack resume
  timeout 60 python -m cli validate --backend fa3 --random 0 --variant unguarded --variant zeros_always \
    --variant guarded_zero_fill --out $OUT/validate0/run > $OUT/validate0/validate.log 2>&1; echo "validate0 rc=$?"; pack validate0
) &
wait
ls -la $OUT
