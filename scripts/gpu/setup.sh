# Source on a Hopper host from the repository root: FA3 on PYTHONPATH, the nvtx package, and libdw for
# an nsys that is only Nsight Compute's bundled copy. Each step is skipped when already done.
#   FA3_BUILD  a folder holding an installed FA3 build (flash_attn_3), or a .tar.xz of one
#              (default: .device/fa3_hopper_build.tar.xz when present)
#   WHEELS     a folder holding an nvtx wheel and libdw1/libelf1 .debs for hosts without a package index
FA3_BUILD=${FA3_BUILD:-.device/fa3_hopper_build.tar.xz}
WHEELS=${WHEELS:-.device}
if [ -d "$FA3_BUILD" ]; then
  export PYTHONPATH=$(cd "$FA3_BUILD" && pwd):$PWD${PYTHONPATH:+:$PYTHONPATH}
elif [ -f "$FA3_BUILD" ]; then
  mkdir -p /tmp/fa3 && { [ -d /tmp/fa3/flash_attn_3 ] || tar -xJf "$FA3_BUILD" -C /tmp/fa3; }
  export PYTHONPATH=/tmp/fa3:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
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
