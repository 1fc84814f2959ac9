#!/usr/bin/env bash
# After the review refactor (3rd session): every GPU test at this commit, and one nsys profile with the
# nvtx wheel to check that the "prefixbench" NVTX domain now registers inside the capture range.
source scripts/gpu/setup.sh
mkdir -p $OUT/verify
timeout 300 python -m pytest -m gpu tests/ > $OUT/verify/gpu_tests.log 2>&1; echo "gpu tests rc=$?"
tail -1 $OUT/verify/gpu_tests.log
timeout 150 python -m cli profile --tool nsys --nsys "$NSYS" --backend fa3 --device cuda --distribution sft_long_prompt \
  --tokens 16384 --heads 16 --head-dim 128 --dtype bfloat16 --variant zeros_always --variant guarded_passthrough \
  --reps 5 --out $OUT/verify/prof > $OUT/verify/profile.log 2>&1; echo "profile rc=$?"
OUT=$OUT python - <<'PY' > $OUT/verify/nvtx_domains.txt 2>&1
import glob, json, os, sqlite3
OUT = os.environ["OUT"]
from profiles.nsys_sqlite import _strings, nvtx_domains, tables
db = glob.glob(f"{OUT}/verify/prof/**/profile.sqlite", recursive=True)[0]
conn = sqlite3.connect(db)
print("domains in capture:", nvtx_domains(conn, _strings(conn, tables(conn))))
for m in glob.glob(f"{OUT}/verify/prof/**/runner_meta.json", recursive=True):
    meta = json.load(open(m)); print("runner nvtx:", meta.get("nvtx_backend"), meta.get("nvtx_domain"))
PY
cat $OUT/verify/nvtx_domains.txt
find $OUT/verify/prof -name '*.nsys-rep' -o -name '*.sqlite' | xargs rm -f
tar -czf $OUT/verify.tgz -C $OUT verify && rm -rf $OUT/verify
