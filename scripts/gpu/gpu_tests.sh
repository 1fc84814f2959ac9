#!/usr/bin/env bash
# Every GPU test, with the worst errors of the FA3-vs-reference checks written to gpu_errors.json, and the
# NVTX domains an nsys capture holds (the "prefixbench" domain when the nvtx package is installed).
# Usage: OUT=runs/h100 bash scripts/gpu/gpu_tests.sh
source scripts/gpu/setup.sh
PREFIXBENCH_GPU_ERRORS="$OUT/gpu_errors.json" python -m pytest -q -m gpu tests/ 2>&1 | tee "$OUT/gpu_tests.log"
python -m cli doctor --out "$OUT" 2>&1 | tee "$OUT/doctor.log"
python -m cli profile --tool nsys ${NSYS:+--nsys "$NSYS"} --backend fa3 --device cuda --distribution sft_long_prompt \
  --tokens 16384 --heads 16 --head-dim 128 --dtype bfloat16 --variant zeros_always --variant guarded_passthrough \
  --reps 5 --out "$OUT/prof" 2>&1 | tee "$OUT/profile.log"
python - "$OUT/prof" <<'PY' | tee "$OUT/nvtx_domains.txt"
import json, pathlib, sqlite3, sys
from profiles.nsys_sqlite import _strings, nvtx_domains, tables
prof = pathlib.Path(sys.argv[1])
conn = sqlite3.connect(prof / "profile.sqlite")
print("domains in capture:", nvtx_domains(conn, _strings(conn, tables(conn))))
meta = json.loads((prof / "runner_meta.json").read_text())
print("runner nvtx:", meta.get("nvtx_backend"), meta.get("nvtx_domain"))
PY
