"""The two fused row kernels of the key split, each touching response rows only.

- `merge_response_rows_`: the forward's two partial results (pass A: a row against its prefix keys,
  pass B: against its response keys) become one: `lse = logaddexp(lse_a, lse_b)`,
  `out = exp(lse_a - lse) * out_a + exp(lse_b - lse) * out_b`; out in place into `out_a`, the merged
  lse into a new buffer. Not in place into `lse_a`: a row's lse values are read by every thread of
  the program that holds part of that row (each needs its head's weight) but stored by fewer, and
  nothing orders one thread's store before another thread's load, so an in-place lse store raced
  with the loads of other warps and they weighted `out` with an already merged lse.
- `add_response_rows_`: the backward's `dq += dq_b` on response rows.

Prefix rows come from pass A alone, so both skip them. On CUDA one Triton launch each: a program
takes `ROWS` rows, reads `row_is_prefix`, and masked rows issue no memory traffic. Elsewhere the same
arithmetic runs as torch index ops over the response rows.
"""
from __future__ import annotations

import torch
from torch import Tensor

try:  # Triton ships with CUDA builds of torch; absent or unusable on CPU-only machines.
    import triton
    import triton.language as tl
except Exception:  # noqa: BLE001
    triton = None

ROWS = 4    # rows per program: amortises the launch over the prefix rows it skips

if triton is not None:
    @triton.jit
    def _merge_kernel(out_ptr, out_b_ptr, lse_ptr, lse_b_ptr, lse_out_ptr, mask_ptr, total, lse_row_stride,
                      lse_b_row_stride, lse_out_row_stride, HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
                      BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr, ROWS: tl.constexpr):
        h = tl.arange(0, BLOCK_H)
        d = tl.arange(0, BLOCK_D)
        inside = (h[:, None] < HEADS) & (d[None, :] < HEAD_DIM)
        for r in tl.static_range(ROWS):
            row = tl.program_id(0) * ROWS + r
            if row < total:
                lse_a = tl.load(lse_ptr + h * lse_row_stride + row, mask=h < HEADS, other=0.0)
                if tl.load(mask_ptr + row).to(tl.int1) != 0:     # prefix row: pass A's lse as it is
                    tl.store(lse_out_ptr + h * lse_out_row_stride + row, lse_a, mask=h < HEADS)
                else:
                    lse_b = tl.load(lse_b_ptr + h * lse_b_row_stride + row, mask=h < HEADS, other=0.0)
                    top = tl.maximum(lse_a, lse_b)
                    top = tl.where(top > -3.0e38, top, 0.0)     # keep the shift finite
                    lse = top + tl.log(tl.exp(lse_a - top) + tl.exp(lse_b - top))
                    w_a = tl.exp(lse_a - lse)
                    w_b = tl.exp(lse_b - lse)
                    offs = row.to(tl.int64) * (HEADS * HEAD_DIM) + h[:, None] * HEAD_DIM + d[None, :]
                    o_a = tl.load(out_ptr + offs, mask=inside)
                    o_b = tl.load(out_b_ptr + offs, mask=inside).to(tl.float32)
                    merged = w_a[:, None] * o_a.to(tl.float32) + w_b[:, None] * o_b
                    tl.store(out_ptr + offs, merged.to(o_a.dtype), mask=inside)
                    tl.store(lse_out_ptr + h * lse_out_row_stride + row, lse, mask=h < HEADS)

    @triton.jit
    def _add_rows_kernel(dst_ptr, src_ptr, mask_ptr, total, row_elems, BLOCK: tl.constexpr,
                         ROWS: tl.constexpr):
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < row_elems
        for r in tl.static_range(ROWS):
            row = tl.program_id(0) * ROWS + r
            if row < total:
                if tl.load(mask_ptr + row).to(tl.int1) == 0:
                    base = row.to(tl.int64) * row_elems
                    a = tl.load(dst_ptr + base + offs, mask=inside)
                    b = tl.load(src_ptr + base + offs, mask=inside)
                    tl.store(dst_ptr + base + offs, (a.to(tl.float32) + b.to(tl.float32)).to(a.dtype), mask=inside)


def _use_triton(*tensors: Tensor) -> bool:
    return triton is not None and all(t.is_cuda for t in tensors) and all(t.is_contiguous() for t in tensors)


def _response_rows(row_is_prefix: Tensor, total: int) -> Tensor:
    return (~row_is_prefix[:total]).nonzero().squeeze(1)


def merge_response_rows_(out: Tensor, lse: Tensor, out_b: Tensor, lse_b: Tensor, row_is_prefix: Tensor,
                         total: int) -> Tensor:
    """On response rows r < total: out[r] <- the LSE-weighted merge with out_b[r], in place; returns the
    merged lse, a new [heads, T] tensor (pass A's lse on prefix rows; rows >= total unset, as FA3's).

    `out*`: [T, heads, head_dim]; `lse*`: [heads, T] float32 (rows may be strided, as FA3 returns them).
    `lse` and `lse_b` are only read.
    """
    if total <= 0:
        return lse
    merged = torch.empty_like(lse)
    if (_use_triton(out, out_b) and lse.is_cuda and lse.stride(1) == 1 and lse_b.stride(1) == 1
            and merged.stride(1) == 1):
        heads, head_dim = out.shape[1], out.shape[2]
        _merge_kernel[(triton.cdiv(total, ROWS),)](
            out, out_b, lse, lse_b, merged, row_is_prefix, total, lse.stride(0), lse_b.stride(0), merged.stride(0),
            HEADS=heads, HEAD_DIM=head_dim, BLOCK_H=triton.next_power_of_2(heads),
            BLOCK_D=triton.next_power_of_2(head_dim), ROWS=ROWS)
        return merged
    merged[:, :total] = lse[:, :total]
    rows = _response_rows(row_is_prefix, total)
    la, lb = lse[:, rows], lse_b[:, rows]
    merged_lse = torch.logaddexp(la, lb)
    w_a = torch.exp(la - merged_lse).transpose(0, 1)[..., None]     # [rows, heads, 1]
    w_b = torch.exp(lb - merged_lse).transpose(0, 1)[..., None]
    out[rows] = (w_a * out[rows].float() + w_b * out_b[rows].float()).to(out.dtype)
    merged[:, rows] = merged_lse
    return merged


def add_response_rows_(dst: Tensor, src: Tensor, row_is_prefix: Tensor, total: int) -> Tensor:
    """In place: dst[r] += src[r] for rows r < total that are not prefix rows; returns dst."""
    if total <= 0:
        return dst
    if _use_triton(dst, src):
        row_elems = dst[0].numel()
        block = min(4096, triton.next_power_of_2(row_elems))
        grid = (triton.cdiv(total, ROWS), triton.cdiv(row_elems, block))
        _add_rows_kernel[grid](dst, src, row_is_prefix, total, row_elems, BLOCK=block, ROWS=ROWS)
        return dst
    rows = _response_rows(row_is_prefix, total)
    dst.index_add_(0, rows, src.index_select(0, rows))
    return dst
