#!/bin/bash
# Build FlashAttention-3 (Hopper, sm_90a) with the PrefixLM `prefix_lens` patch.
# Usage: build.sh [--full] SOURCE OUT_TARBALL
#   SOURCE: fa3src.tar.xz (flash-attention commit 0251105a hopper/ + CUTLASS) or a flash-attention checkout
#   --full: build every FA3 feature (drops the trimmed FLASH_ATTENTION_DISABLE_* defaults)
# Needs nvcc >= 12.3 and torch >= 2.9 (stable-ABI API); about 3 minutes on 16 cores when trimmed.
set -euo pipefail
full=0
if [ "${1:-}" = "--full" ]; then full=1; shift; fi
src=${1:?usage: build.sh [--full] SOURCE OUT_TARBALL}; out=${2:?usage: build.sh [--full] SOURCE OUT_TARBALL}
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
work=$(mktemp -d)
if [ -d "$src" ]; then
  cp -a "$src/hopper" "$work/hopper"
  [ -d "$src/csrc" ] && ln -s "$(cd "$src/csrc" && pwd)" "$work/csrc"
else
  tar -xJf "$src" -C "$work"
fi
cd "$work"
patch -p1 --forward < "$here/prefix_lens.patch"
cd hopper
if [ "$full" = 0 ]; then
  export FLASH_ATTENTION_DISABLE_HDIM96=${FLASH_ATTENTION_DISABLE_HDIM96:-TRUE} \
    FLASH_ATTENTION_DISABLE_HDIM192=${FLASH_ATTENTION_DISABLE_HDIM192:-TRUE} \
    FLASH_ATTENTION_DISABLE_HDIM256=${FLASH_ATTENTION_DISABLE_HDIM256:-TRUE} \
    FLASH_ATTENTION_DISABLE_FP16=${FLASH_ATTENTION_DISABLE_FP16:-TRUE} \
    FLASH_ATTENTION_DISABLE_FP8=TRUE FLASH_ATTENTION_DISABLE_SPLIT=TRUE FLASH_ATTENTION_DISABLE_PAGEDKV=TRUE \
    FLASH_ATTENTION_DISABLE_APPENDKV=TRUE FLASH_ATTENTION_DISABLE_SOFTCAP=TRUE FLASH_ATTENTION_DISABLE_PACKGQA=TRUE \
    FLASH_ATTENTION_DISABLE_LOCAL=TRUE FLASH_ATTENTION_DISABLE_SM80=TRUE FLASH_ATTENTION_DISABLE_HDIMDIFF64=TRUE \
    FLASH_ATTENTION_DISABLE_HDIMDIFF192=TRUE FLASH_ATTENTION_DISABLE_CLUSTER=TRUE
fi
export FLASH_ATTENTION_OFFLINE_BUILD=1 MAX_JOBS=${MAX_JOBS:-8} NVCC_THREADS=${NVCC_THREADS:-4}
python3 setup.py build_ext --inplace > build.log 2>&1 || { tail -60 build.log; exit 1; }
tar -cJf "$out" flash_attn_3 flash_attn_interface.py flash_attn_config.py
echo "built $out"
