#!/usr/bin/env bash
# On a Hopper host: the README's FA3 route (scripts/build_fa3.sh) built in the background while the
# correctness GPU tests, `validate` of the newer variants and an ncu profile run on a prebuilt patched
# FA3 (kernels/fa3_prefixlm); then `doctor` on the route's build, the clock GPU tests and the clock
# cross-check (timing-sensitive, so after the build has finished). Everything lands in $OUT/checks.tgz.
# Usage: OUT=runs/h100 FA3_SOURCE=fa3src.tar.xz FA3_BUILD=fa3_prefixlm_build.tar.xz bash scripts/gpu/install_and_checks.sh
set -o pipefail
FA3_SOURCE=${FA3_SOURCE:?flash-attention source archive or checkout}
OUT=${OUT:-runs/h100}
R=/tmp/checks && mkdir -p "$R"
( start=$(date +%s); bash scripts/build_fa3.sh --source "$FA3_SOURCE" --out /tmp/fa3_route > "$R/build_fa3.log" 2>&1
  echo "build_fa3.sh exit $? after $(( $(date +%s) - start )) s" >> "$R/build_fa3.log" ) &
build=$!
source scripts/gpu/setup.sh
export PYTHONUNBUFFERED=1
python -m pytest -q -m gpu tests/test_key_split_gpu.py tests/test_single_pass_gpu.py tests/test_op_gpu.py \
  2>&1 | tee "$R/gpu_tests_correctness.log" | tail -5
python -m cli validate --backend fa3 --variant key_split --variant auto --variant single_pass --out "$R/validate_new" \
  2>&1 | tee "$R/validate_new.log" | tail -8
python -m cli profile --tool ncu ${NCU:+--ncu "$NCU"} --backend fa3 --device cuda --distribution sft_long_prompt \
  --tokens 16384 --heads 16 --head-dim 128 --dtype bfloat16 --variant zeros_always --variant guarded_passthrough \
  --reps 2 --out "$R/profile_ncu" 2>&1 | tee "$R/profile_ncu.log" | tail -8
wait $build; tail -3 "$R/build_fa3.log"
PYTHONPATH=/tmp/fa3_route:$PWD python -m cli doctor --out "$R/doctor_out" 2>&1 | tee "$R/doctor.log"
python -m pytest -q -m gpu tests/test_clocks_gpu.py 2>&1 | tee "$R/gpu_tests_clocks.log" | tail -5
python scripts/gpu/timing_crosscheck.py --out "$R/timing_crosscheck" --time-cap 4 2>&1 | tee "$R/timing_crosscheck.log"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1
git rev-parse HEAD > "$R/git_revision.txt" 2>/dev/null || echo "${PREFIXBENCH_GIT_REVISION:-unknown}" > "$R/git_revision.txt"
tar -czf "$OUT/checks.tgz" -C /tmp checks
