# Source on the GPU host from the repo root: FA3 build, nvtx wheel, libdw for the bundled nsys.
mkdir -p /tmp/fa3 && [ -d /tmp/fa3/flash_attn_3 ] || tar -xJf .device/fa3_hopper_build.tar.xz -C /tmp/fa3
export PYTHONPATH=/tmp/fa3:$PWD
python -c "import nvtx" 2>/dev/null || python -m pip install -q --no-index --no-deps .device/nvtx-*.whl 2>/dev/null
[ -d /tmp/dw ] || for f in .device/libdw1_*.deb .device/libelf1_*.deb; do dpkg -x "$f" /tmp/dw; done
export LD_LIBRARY_PATH=/tmp/dw/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NSYS=$(ls /opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys 2>/dev/null | head -1)
export NCU=$(ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
export COLUMNS=160
