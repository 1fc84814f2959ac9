#!/usr/bin/env bash
# Where the time goes, per phase: nsys (keeps the .nsys-rep and nsys stats CSVs) and ncu (keeps the
# .ncu-rep; clock and cache control recorded in breakdown.json) on zeros_always vs guarded_passthrough.
# Usage: OUT=runs/h100 bash scripts/gpu/profiles.sh [--tokens N]   (default 65536)
source scripts/gpu/setup.sh
ARGS=(--backend fa3 --device cuda --distribution sft_long_prompt --heads 16 --head-dim 128 --dtype bfloat16
      --variant zeros_always --variant guarded_passthrough --reps 5)
TOKENS=(${@:---tokens 65536})
python -m cli profile --tool nsys ${NSYS:+--nsys "$NSYS"} "${ARGS[@]}" "${TOKENS[@]}" --out "$OUT/profile_nsys" \
  2>&1 | tee "$OUT/profile_nsys.log"
python -m cli profile --tool ncu ${NCU:+--ncu "$NCU"} "${ARGS[@]}" "${TOKENS[@]}" --out "$OUT/profile_ncu" \
  2>&1 | tee "$OUT/profile_ncu.log"
rm -f "$OUT"/profile_nsys/*.sqlite   # large; the .nsys-rep regenerates it (nsys export --type sqlite)
