#!/usr/bin/env bash
# The default suite twice in a row on one GPU (run-to-run agreement), then the comparison of the two.
# Usage from the repository root: OUT=runs/h100 bash scripts/gpu/default_suite.sh   (about 3 minutes a run)
source scripts/gpu/setup.sh
python -m cli sweep --out "$OUT/default_A" --no-progress 2>&1 | tee "$OUT/default_A.log"
python -m cli sweep --out "$OUT/default_B" --no-progress 2>&1 | tee "$OUT/default_B.log"
python -m cli compare "$OUT/default_A" "$OUT/default_B"
