#!/usr/bin/env bash
# The variants beside other ways to compute the same attention (docs/PEERS.md): FlexAttention (compiled;
# its first call compiles for minutes), SDPA with a dense mask, and the single-pass FA3 bounds.
# Usage: OUT=runs/h100 bash scripts/gpu/peers.sh
source scripts/gpu/setup.sh
D="--distribution sft_long_prompt --distribution short_prefix_long_response --distribution no_causal"
python -m cli sweep --suite default $D --tokens 16384 --tokens 65536 --peer sdpa_dense --peer fa3_causal_bound \
  --peer fa3_bidir_bound --time-cap 2 --phase-reps 3 --out "$OUT/peers" --no-progress 2>&1 | tee "$OUT/peers.log"
python -m cli sweep --suite default $D --tokens 16384 --tokens 65536 --variant prefix_rows_add \
  --peer flex_attention --peer fa3_bidir_bound --time-cap 3 --phase-reps 3 --out "$OUT/peers_flex" \
  --no-progress 2>&1 | tee "$OUT/peers_flex.log"
python -m cli report "$OUT/peers" "$OUT/peers_flex" --out "$OUT/report_peers"
