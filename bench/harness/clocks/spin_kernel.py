"""The stream-holding kernel: one thread spins on a host-visible flag until released or timed out.

Imported only on CUDA (it needs Triton). The flag and the status word live in pinned host memory,
read and written by the GPU through unified virtual addressing; `ld.volatile` keeps every poll a
fresh read over the bus. `%globaltimer` (nanoseconds) bounds the spin, as nvbench's blocking
kernel is bounded, so a host that never releases cannot hang the stream.
"""
from __future__ import annotations

import triton
import triton.language as tl

STATUS_PENDING, STATUS_TIMED_OUT, STATUS_RELEASED = 0, 1, 2


@triton.jit
def _globaltimer():
    return tl.inline_asm_elementwise("mov.u64 $0, %globaltimer;", "=l", [], dtype=tl.int64,
                                     is_pure=False, pack=1)


@triton.jit(do_not_specialize=["generation", "timeout_ns"])
def spin_until_released(flag_ptr, status_ptr, generation, timeout_ns):
    """Wait until `*flag_ptr >= generation` or `timeout_ns` passed; write released (2) or timed out (1)."""
    start = _globaltimer()
    now = start
    flag = tl.load(flag_ptr, volatile=True)
    while (flag < generation) & (now - start < timeout_ns):
        flag = tl.load(flag_ptr, volatile=True)
        now = _globaltimer()
    tl.store(status_ptr, tl.where(flag >= generation, 2, 1))


def launch(flag, status, generation: int, timeout_ns: int) -> None:
    """Enqueue the spin on the current stream (one program, one warp)."""
    spin_until_released[(1,)](flag, status, generation, timeout_ns, num_warps=1)
