# Source on a Hopper host from the repository root: the installed kernels on PYTHONPATH, the nvtx
# package, and libdw for an nsys that is only Nsight Compute's bundled copy. Each step is skipped when
# already done; prefixbench builds no kernel (install FA3 from flash-attention's hopper/ folder as its
# README says, FA4 with `pip install -e '.[fa4]'`).
#   FA3_PATH   a folder holding an FA3 installed or built in place (flash_attn_3/, flash_attn_interface.py),
#              when it is not in site-packages
#   FA4_SITE   a folder FA4 was installed into with `pip install --target` (default: /tmp/fa4site when
#              present, as ../shared/gpu-host/fa4_wheels.sh --install leaves it)
#   WHEELS     a folder holding an nvtx wheel and libdw1/libelf1 .debs for hosts without a package index
FA4_SITE=${FA4_SITE:-/tmp/fa4site}
WHEELS=${WHEELS:-.device}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ -n "${FA3_PATH:-}" ] && export PYTHONPATH=$(cd "$FA3_PATH" && pwd):$PYTHONPATH
# nvidia-cutlass-dsl's .pth is not run for a --target install: its dsl_packages folder goes on the path too
[ -d "$FA4_SITE" ] && export PYTHONPATH=$FA4_SITE:$FA4_SITE/nvidia_cutlass_dsl/dsl_packages:$PYTHONPATH
python -c "import nvtx" 2>/dev/null || python -m pip install -q --no-index --no-deps "$WHEELS"/nvtx-*.whl 2>/dev/null \
  || python -m pip install -q nvtx 2>/dev/null || true
if ls "$WHEELS"/libdw1_*.deb >/dev/null 2>&1 && [ ! -d /tmp/dw ]; then
  for f in "$WHEELS"/libdw1_*.deb "$WHEELS"/libelf1_*.deb; do dpkg -x "$f" /tmp/dw; done
fi
[ -d /tmp/dw ] && export LD_LIBRARY_PATH=/tmp/dw/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NSYS=${NSYS:-$(command -v nsys || ls /opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys 2>/dev/null | head -1)}
export NCU=${NCU:-$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)}
export OUT=${OUT:-runs/h100}
export COLUMNS=${COLUMNS:-160}
mkdir -p "$OUT"
