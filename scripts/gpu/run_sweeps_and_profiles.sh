#!/usr/bin/env bash
# GPU call: the default suite twice on GPU 0 (run-to-run agreement) while GPU 1 profiles and validates.
# Usage on a 2-GPU host: bash scripts/gpu/run_sweeps_and_profiles.sh   (writes under $OUT)
source scripts/gpu/setup.sh
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv > $OUT/gpus.txt
(
  export CUDA_VISIBLE_DEVICES=0
  timeout 200 python -m cli sweep --out $OUT/sweepA --no-progress > $OUT/sweepA.log 2>&1; echo "sweepA rc=$?"
  timeout 200 python -m cli sweep --out $OUT/sweepB --no-progress > $OUT/sweepB.log 2>&1; echo "sweepB rc=$?"
) &
(
  export CUDA_VISIBLE_DEVICES=1
  timeout 120 python -m cli profile --tool nsys --nsys "$NSYS" --backend fa3 --device cuda \
    --distribution sft_long_prompt --tokens 65536 --heads 16 --head-dim 128 --dtype bfloat16 \
    --variant zeros_always --variant guarded_passthrough --reps 5 --out $OUT/prof64k > $OUT/prof64k.log 2>&1
  echo "prof64k rc=$?"
  OUT=$OUT/capture timeout 200 bash scripts/capture_profile_fixtures.sh > /dev/null 2>&1; echo "capture rc=$?"
  timeout 200 python -m cli validate --backend fa3 --random 5 --out $OUT/validate > $OUT/validate.log 2>&1
  echo "validate rc=$?"
) &
wait
rm -f $OUT/capture/nsys/*.sqlite $OUT/prof64k/*.sqlite 2>/dev/null
du -sh $OUT/* | sort -h | tail
