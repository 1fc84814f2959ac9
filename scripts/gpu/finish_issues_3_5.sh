#!/usr/bin/env bash
# Next GPU call (one H100, nothing else on the host): the default suite twice on a quiet GPU with the
# 100-pair bandwidth probe (issue 3), then the H100 validation of the three crash-prone variants,
# resumed from the committed partial matrix (issue 5). Results packed as .tgz under $OUT.
source scripts/gpu/setup.sh
pack() { tar -czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
mkdir -p $OUT/sweeps $OUT/validate
timeout 215 python -m cli sweep --out $OUT/sweeps/A --no-progress > $OUT/sweeps/A.log 2>&1; echo "A rc=$?"
timeout 215 python -m cli sweep --out $OUT/sweeps/B --no-progress > $OUT/sweeps/B.log 2>&1; echo "B rc=$?"
pack sweeps
cp results/h100/validate/validation.jsonl $OUT/validate/
timeout 130 python -m cli validate --backend fa3 --random 3 --resume --out $OUT/validate > $OUT/validate/validate.log 2>&1
echo "validate rc=$?"; pack validate
