#!/usr/bin/env bash
# Capture real profiler output on the GPU host for the profile tests (tests/fixtures/profiles/).
# Run from the repo root:  OUT=/some/dir bash scripts/capture_profile_fixtures.sh
# Writes: $OUT/fixtures/{nsys_h100_sft4096.sqlite, nsys_h100_sft4096.meta.json, ncu_*.csv}, plus the
# full runs under $OUT/{nsys,ncu,torch} (breakdown.json, .nsys-rep, trace.json) and $OUT/capture.log.
# NSYS / NCU may be set; otherwise they are looked up on PATH and under /opt/nvidia/nsight-compute.
set -uo pipefail
OUT=${OUT:?set OUT to the output directory}
mkdir -p "$OUT/fixtures"
exec > >(tee "$OUT/capture.log") 2>&1

# --- environment: FA3, nvtx, libdw and the NSYS/NCU paths (see scripts/gpu/setup.sh) ---
OUT_FIXTURES=$OUT
source scripts/gpu/setup.sh
OUT=$OUT_FIXTURES
echo "nsys=$NSYS ncu=$NCU"; python -c "import torch, nvtx; print('torch', torch.__version__, torch.cuda.get_device_name())"

CONFIG=(--backend fa3 --device cuda --distribution sft_long_prompt --tokens 4096 --heads 4 --head-dim 128
        --dtype bfloat16 --variant zeros_always --variant guarded_passthrough)
status=0

# --- nsys: full run, then a trimmed SQLite as the fixture ---
if python -m cli profile --tool nsys --nsys "$NSYS" "${CONFIG[@]}" --reps 3 --out "$OUT/nsys"; then
  python -m profiles.nsys_trim "$OUT/nsys/profile.sqlite" "$OUT/fixtures/nsys_h100_sft4096.sqlite"
  cp "$OUT/nsys/runner_meta.json" "$OUT/fixtures/nsys_h100_sft4096.meta.json"
  rm -f "$OUT/nsys/profile.sqlite"          # the .nsys-rep and the trimmed copy are enough to bring back
else
  echo "nsys profile FAILED"; status=1
fi

# --- ncu: zero-fill and accumulate kernels, per variant ---
if python -m cli profile --tool ncu --ncu "$NCU" "${CONFIG[@]}" --reps 2 --out "$OUT/ncu"; then
  cp "$OUT"/ncu/ncu_*.csv "$OUT/fixtures/"
else
  echo "ncu profile FAILED (performance counters may need admin rights: ERR_NVGPUCTRPERM)"; status=1
fi

# --- torch.profiler on CUDA (no fixture; checks the CUDA attribution path) ---
python -m cli profile --tool torch "${CONFIG[@]}" --reps 3 --out "$OUT/torch" || { echo "torch profile FAILED"; status=1; }
rm -f "$OUT/torch/trace.json.gz"; gzip -f "$OUT/torch/trace.json" 2>/dev/null

# --- the GPU test and the parser tests against the new fixtures ---
mkdir -p tests/fixtures/profiles && cp "$OUT"/fixtures/* tests/fixtures/profiles/ 2>/dev/null
python -m pytest -q tests/test_profile_gpu.py tests/test_profile_nsys_sqlite.py tests/test_profile_ncu.py || status=1
ls -la "$OUT/fixtures"
exit $status
