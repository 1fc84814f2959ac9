#!/usr/bin/env bash
# One GPU call on a 2-GPU host (each step's results packed into one .tgz under $OUT, since only a few
# files come back): torchrun over both GPUs, then GPU 0 runs the default suite twice and validates
# three variants while GPU 1 profiles (nsys 64k, fixture capture), validates two variants, runs peers.
source scripts/gpu/setup.sh
pack() { tar -czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm,driver_version --format=csv > $OUT/gpus.txt
mkdir -p $OUT/torchrun
timeout 75 python -m torch.distributed.run --nproc-per-node 2 -m cli sweep --suite default --tokens 16384 --time-cap 2 \
  --out $OUT/torchrun/sweep --no-progress > $OUT/torchrun/torchrun.log 2>&1; echo "torchrun rc=$?" | tee -a $OUT/torchrun/torchrun.log
pack torchrun
(
  export CUDA_VISIBLE_DEVICES=0
  mkdir -p $OUT/sweepA $OUT/sweepB $OUT/validate0
  timeout 170 python -m cli sweep --out $OUT/sweepA/run --no-progress > $OUT/sweepA/sweep.log 2>&1; echo "sweepA rc=$?"; pack sweepA
  timeout 170 python -m cli sweep --out $OUT/sweepB/run --no-progress > $OUT/sweepB/sweep.log 2>&1; echo "sweepB rc=$?"; pack sweepB
  timeout 150 python -m cli validate --backend fa3 --random 3 --variant unguarded --variant zeros_always \
    --variant guarded_zero_fill --out $OUT/validate0/run > $OUT/validate0/validate.log 2>&1; echo "validate0 rc=$?"; pack validate0
) &
(
  export CUDA_VISIBLE_DEVICES=1
  mkdir -p $OUT/prof $OUT/validate1 $OUT/peers
  timeout 90 python -m cli profile --tool nsys --nsys "$NSYS" --backend fa3 --device cuda \
    --distribution sft_long_prompt --tokens 65536 --heads 16 --head-dim 128 --dtype bfloat16 \
    --variant zeros_always --variant guarded_passthrough --reps 5 --out $OUT/prof/prof64k > $OUT/prof/prof64k.log 2>&1
  echo "prof64k rc=$?"
  OUT=$OUT/prof/capture timeout 120 bash scripts/capture_profile_fixtures.sh > /dev/null 2>&1; echo "capture rc=$?"
  rm -f $OUT/prof/*/*.sqlite $OUT/prof/capture/nsys/*.sqlite; pack prof
  timeout 100 python -m cli validate --backend fa3 --random 3 --variant guarded_passthrough --variant prefix_rows_add \
    --out $OUT/validate1/run > $OUT/validate1/validate.log 2>&1; echo "validate1 rc=$?"; pack validate1
  P="--peer flex_attention --peer sdpa_dense --peer fa3_causal_bound --peer fa3_bidir_bound"
  D="--distribution sft_long_prompt --distribution short_prefix_long_response --distribution no_causal"
  timeout 190 python -m cli sweep --suite default $D $P --tokens 16384 --tokens 65536 --time-cap 4 \
    --out $OUT/peers/run --no-progress > $OUT/peers/sweep.log 2>&1; echo "peers rc=$?"; pack peers
) &
wait
ls -la $OUT
