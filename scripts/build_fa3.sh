#!/bin/bash
# Build FlashAttention-3 (the hopper/ part of Dao-AILab/flash-attention) for prefixbench.
#
#   git clone https://github.com/Dao-AILab/flash-attention ~/flash-attention
#   scripts/build_fa3.sh --source ~/flash-attention --out ~/fa3 && export PYTHONPATH=~/fa3:$PYTHONPATH
#
# --source is a git checkout (checked out at the pinned commit, CUTLASS submodule fetched) or a source
# archive (.tar.xz/.tar.gz/.tgz/.zip) holding hopper/ and csrc/cutlass/include. Needs a Hopper host with
# nvcc >= 12.3 and torch >= 2.9. The default build is trimmed to what prefixbench runs (sm_90a, bf16,
# head dims 64 and 128, forward + backward, varlen, causal): about 3 minutes on 16 cores instead of
# an hour. --full builds upstream's full set. The output folder holds flash_attn_3/ (the extension),
# flash_attn_interface.py, flash_attn_config.py and flash_attn_build_flags.json, the record of this
# build's flags that `prefixbench doctor` and env.json read.
set -euo pipefail

PINNED_COMMIT=0251105a   # the commit prefixbench's results were measured with
usage() {
  cat <<EOF
usage: $0 --source PATH [--out DIR] [--head-dims 64,128] [--dtypes bf16] [--full]
          [--commit SHA | --no-checkout] [--tar FILE.tar.xz] [--jobs N] [--dry-run]
  --source PATH      flash-attention git checkout or source archive
  --out DIR          where the build goes (default: ./fa3_build); put it on PYTHONPATH
  --head-dims LIST   head dims to compile, from 64,96,128,192,256 (default: 64,128)
  --dtypes LIST      from bf16,fp16,fp8 (fp8 is forward only; default: bf16)
  --full             every head dim, dtype and feature (upstream's default build; about an hour)
  --commit SHA       check a git checkout out at SHA (default: $PINNED_COMMIT)
  --no-checkout      build the checkout as it is
  --tar FILE         also pack the output folder into FILE (.tar.xz)
  --jobs N           parallel compile jobs (default: 8; about 4 GB of memory each)
  --dry-run          print the build flags and the record, build nothing
EOF
}
die() { echo "build_fa3.sh: $*" >&2; exit 2; }

source_path="" out="fa3_build" head_dims="64,128" dtypes="bf16" full=0 commit=$PINNED_COMMIT checkout=1
tarball="" jobs=8 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_path=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --head-dims) head_dims=${2:?}; shift 2 ;;
    --dtypes) dtypes=${2:?}; shift 2 ;;
    --full) full=1; shift ;;
    --commit) commit=${2:?}; shift 2 ;;
    --no-checkout) checkout=0; shift ;;
    --tar) tarball=${2:?}; shift 2 ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$source_path" ] || { usage >&2; die "--source is required"; }
[ -e "$source_path" ] || die "--source $source_path: no such file or folder"
mkdir -p "$out" 2>/dev/null || die "--out $out: cannot create"
out=$(cd "$out" && pwd)
case "$tarball" in ""|/*) ;; *) tarball="$PWD/$tarball" ;; esac

# --- flags: FLASH_ATTENTION_DISABLE_* read by hopper/setup.py ----------------------------------------
declare -A disable=()
if [ "$full" = 0 ]; then
  for d in 64 96 128 192 256; do disable[HDIM$d]=TRUE; done
  for d in ${head_dims//,/ }; do
    [[ "$d" =~ ^(64|96|128|192|256)$ ]] || die "--head-dims: $d is not one of 64,96,128,192,256"
    unset "disable[HDIM$d]"
  done
  disable[FP16]=TRUE; disable[FP8]=TRUE
  for t in ${dtypes//,/ }; do
    case "$t" in bf16) ;; fp16) unset "disable[FP16]" ;; fp8) unset "disable[FP8]" ;;
      *) die "--dtypes: $t is not one of bf16,fp16,fp8" ;; esac
  done
  # features prefixbench never calls: split-KV, paged/append KV, softcap, pack-GQA, local windows,
  # clusters, sm80 kernels, mixed head dims
  for f in SPLIT PAGEDKV APPENDKV SOFTCAP PACKGQA LOCAL CLUSTER SM80 HDIMDIFF64 HDIMDIFF192; do
    disable[$f]=TRUE
  done
fi
disabled_list=$(for k in "${!disable[@]}"; do echo "FLASH_ATTENTION_DISABLE_$k"; done | sort | tr '\n' ' ')

record() {   # the JSON written next to flash_attn_config.py
  FA3_COMMIT="$1" FA3_DISABLED="$disabled_list" FA3_FULL=$full python3 - <<'EOF'
import json, os
disabled = os.environ["FA3_DISABLED"].split()
off = lambda name: f"FLASH_ATTENTION_DISABLE_{name}" in disabled
print(json.dumps({
    "fa3_commit": os.environ["FA3_COMMIT"],
    "full": os.environ["FA3_FULL"] == "1",
    "head_dims": [d for d in (64, 96, 128, 192, 256) if not off(f"HDIM{d}")],
    "dtypes": ["bf16"] + [t for t in ("fp16", "fp8") if not off(t.upper())],
    "backward": True, "varlen": True, "disabled": disabled,
}, indent=2))
EOF
}

if [ "$dry_run" = 1 ]; then
  echo "source: $source_path"
  echo "disabled: ${disabled_list:-none}"
  record "$( [ "$checkout" = 1 ] && echo "$commit" || echo "as checked out" )"
  exit 0
fi

# --- source tree -------------------------------------------------------------------------------------
if [ -d "$source_path/.git" ] || git -C "$source_path" rev-parse --git-dir >/dev/null 2>&1 && [ -d "$source_path/hopper" ]; then
  root=$(cd "$source_path" && pwd)
  if [ "$checkout" = 1 ]; then
    git -C "$root" fetch --quiet origin "$commit" 2>/dev/null || true
    git -C "$root" checkout --quiet "$commit" || die "cannot check out $commit in $root (git fetch first?)"
  fi
  [ -f "$root/csrc/cutlass/include/cutlass/cutlass.h" ] || git -C "$root" submodule update --init csrc/cutlass \
    || die "cannot fetch the CUTLASS submodule (csrc/cutlass)"
  built_commit=$(git -C "$root" rev-parse HEAD)
  [ -z "$(git -C "$root" status --porcelain -- hopper csrc)" ] || built_commit="$built_commit-dirty"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  case "$source_path" in
    *.zip) unzip -q "$source_path" -d "$work" ;;
    *.tar.*|*.tgz) tar -xf "$source_path" -C "$work" ;;
    *) die "--source $source_path: neither a flash-attention checkout nor a .tar.*/.tgz/.zip archive" ;;
  esac
  setup=$(find "$work" -maxdepth 3 -path '*/hopper/setup.py' | head -1)
  [ -n "$setup" ] || die "$source_path holds no hopper/setup.py"
  root=$(dirname "$(dirname "$setup")")
  [ -f "$root/csrc/cutlass/include/cutlass/cutlass.h" ] || die "$source_path lacks csrc/cutlass/include (CUTLASS)"
  built_commit="${FA3_COMMIT:-$PINNED_COMMIT (archive $(basename "$source_path"))}"
fi

# --- build -------------------------------------------------------------------------------------------
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "nvcc not found (CUDA toolkit >= 12.3 needed)"
cd "$root/hopper"
for k in "${!disable[@]}"; do export "FLASH_ATTENTION_DISABLE_$k=TRUE"; done
export FLASH_ATTENTION_OFFLINE_BUILD=1 MAX_JOBS=$jobs NVCC_THREADS=${NVCC_THREADS:-4}
echo "building FA3 at $built_commit (disabled: ${disabled_list:-none}); log: $root/hopper/build.log" >&2
python3 setup.py build_ext --inplace > build.log 2>&1 || { tail -40 build.log >&2; die "build failed"; }

rm -rf "$out/flash_attn_3"
cp -r flash_attn_3 flash_attn_interface.py flash_attn_config.py "$out/"
record "$built_commit" > "$out/flash_attn_build_flags.json"
if [ -n "$tarball" ]; then
  tar -cJf "$tarball" -C "$out" flash_attn_3 flash_attn_interface.py flash_attn_config.py flash_attn_build_flags.json
fi
echo "built $out; use it with: export PYTHONPATH=$out:\$PYTHONPATH && prefixbench doctor"
