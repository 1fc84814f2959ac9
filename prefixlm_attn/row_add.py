"""`dst[r] += src[r]` on prefix rows only, touching no other row.

The bidirectional pass writes dK/dV only on prefix rows and the causal pass writes every row of
every sequence, so the sum of the two only needs work on prefix rows: 3 x prefix bytes instead of
a zero-fill plus 3 x all bytes. On CUDA a Triton kernel masks whole rows (masked lanes issue no
memory traffic); elsewhere an index_add over the prefix rows does the same arithmetic.
"""
from __future__ import annotations

import torch
from torch import Tensor

try:  # Triton ships with CUDA builds of torch; absent or unusable on CPU-only machines.
    import triton
    import triton.language as tl
except Exception:  # noqa: BLE001
    triton = None

if triton is not None:
    @triton.jit
    def _prefix_rows_add_kernel(dst_ptr, src_ptr, mask_ptr, row_elems, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        chunk = tl.program_id(1)
        is_prefix = tl.load(mask_ptr + row).to(tl.int1)
        if is_prefix:
            offs = chunk * BLOCK + tl.arange(0, BLOCK)
            inside = offs < row_elems
            base = row.to(tl.int64) * row_elems
            a = tl.load(dst_ptr + base + offs, mask=inside)
            b = tl.load(src_ptr + base + offs, mask=inside)
            tl.store(dst_ptr + base + offs, (a.to(tl.float32) + b.to(tl.float32)).to(a.dtype), mask=inside)


def _use_triton(dst: Tensor) -> bool:
    return triton is not None and dst.is_cuda and dst.is_contiguous()


def add_prefix_rows_(dst: Tensor, src: Tensor, row_is_prefix: Tensor, total: int) -> Tensor:
    """In place: dst[r] += src[r] for rows r < total with row_is_prefix[r]; returns dst."""
    if total <= 0:
        return dst
    if _use_triton(dst) and src.is_contiguous():
        row_elems = dst[0].numel()
        block = min(4096, triton.next_power_of_2(row_elems))
        grid = (total, triton.cdiv(row_elems, block))
        _prefix_rows_add_kernel[grid](dst, src, row_is_prefix, row_elems, BLOCK=block)
        return dst
    rows = row_is_prefix[:total].nonzero().squeeze(1)
    dst.index_add_(0, rows, src.index_select(0, rows))
    return dst
