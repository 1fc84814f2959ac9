#!/usr/bin/env bash
# Every boundary pattern x every variant through FA3 with poisoned buffers, crash-isolated; --resume
# continues a cut run. Usage: OUT=runs/h100 bash scripts/gpu/validate_matrix.sh [extra validate flags]
source scripts/gpu/setup.sh
python -m cli validate --backend fa3 --random 3 --resume --out "$OUT/validate" "$@" 2>&1 | tee "$OUT/validate.log"
