#!/usr/bin/env bash
# The H100 checks of the two kernel backends and the review, one step a call (each well under 10 minutes),
# in the order a fresh Hopper host runs them. FA3 and FA4 must be installed first (README, "Kernels on a
# Hopper host"); `source scripts/gpu/setup.sh` finds them.
#
# Usage from the repository root:  OUT=runs/h100 bash scripts/gpu/kernels_and_review.sh STEP...
#   doctor     prefixbench doctor: fa3 and fa4 both green                              (~1 min)
#   facts      scripts/gpu/fa4_facts.py: FA4's contract facts (empty passes, rows written) (~3 min)
#   validate   every pattern x every variant on --backend fa4 and on --backend fa3       (~5 min)
#   backends   the backends suite: the default grid on fa3 and fa4 in one interleaved run (~8 min)
#   review     prefixbench review (target: under 6 minutes, stage times in review/stage_times.json)
#   pr_delta   the PR's pair alone on the same machine, to check the review's intervals    (~5 min)
#   report     the report of all of the above, then the GPU tests                         (~4 min)
# Each step writes under $OUT and a log beside it; a step that is cut resumes where it stopped.
set -o pipefail
source scripts/gpu/setup.sh
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > "$OUT/gpu.txt" 2>&1
git rev-parse HEAD > "$OUT/git_revision.txt" 2>/dev/null || echo "${PREFIXBENCH_GIT_REVISION:-unknown}" > "$OUT/git_revision.txt"

timed() {   # timed NAME CMD...: run CMD, log it to $OUT/NAME.log, and note its wall time
  local name=$1; shift
  local start=$(date +%s)
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$OUT/steps.txt"
}

resume() { [ -d "$1" ] && echo --resume; }   # continue a step that was cut

for step in "$@"; do
  case "$step" in
    doctor) timed doctor python -m cli doctor --out "$OUT/doctor" ;;
    facts) timed fa4_facts python scripts/gpu/fa4_facts.py "$OUT/fa4_facts" ;;
    validate)
      timed validate_fa4 python -m cli validate --backend fa4 --random 3 $(resume "$OUT/validate_fa4") --out "$OUT/validate_fa4"
      timed validate_fa3 python -m cli validate --backend fa3 --random 3 $(resume "$OUT/validate_fa3") --out "$OUT/validate_fa3" ;;
    backends) timed backends python -m cli sweep --suite backends $(resume "$OUT/backends") --no-progress --out "$OUT/backends" ;;
    review) timed review python -m cli review --out "$OUT/review" ;;
    pr_delta) timed pr_delta python -m cli sweep --suite pr_delta $(resume "$OUT/pr_delta") --no-progress --out "$OUT/pr_delta" ;;
    report)
      dirs=()
      for d in review/sweep review/settle/t16384 review/settle/t65536 review/validate review/profile pr_delta \
               backends validate_fa4 validate_fa3; do [ -d "$OUT/$d" ] && dirs+=("$OUT/$d"); done
      timed report python -m cli report "${dirs[@]}" --out "$OUT/report"
      timed gpu_tests python -m pytest -q -m gpu tests/ -p no:cacheprovider ;;
    *) echo "kernels_and_review.sh: unknown step $step (doctor facts validate backends review pr_delta report)" >&2
       exit 2 ;;
  esac
done
