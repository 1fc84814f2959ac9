"""Single-pass PrefixLM variants: one kernel launch per direction with the PrefixLM x document mask inside
the kernel (FA4's `mask_mod`), so no pass can be empty and no second dK/dV buffers exist.

Two forms, one variant each:
- `sparse`: the packed batch as ONE sequence of `total` tokens; the mask_mod reads two per-token tables
  (document, absolute prefix end) and block sparsity says which 128 x 128 tiles are wholly visible (run
  without the mask), partial (run with it) or invisible (skipped). The tables and tiles are built on the
  device from `cu_seqlens` and `prefix_lens` (masks.py) in the timed phase `fwd.block_mask` /
  `bwd.block_mask`, so their cost is part of the variant's. FA4's varlen backward refuses block sparsity,
  hence one sequence rather than varlen.
- `masked`: varlen over the batch's sequences with a per-sequence mask_mod (key in the prefix or not after
  the query) and no block sparsity: every tile up to the longest sequence runs with the mask. Beside
  `sparse` it shows what tile skipping is worth.

Rows written: out/dq/dk/dv of every token of every sequence; padding rows are zeroed by the variant.
A backend offers a form when its `single_pass_variants` names the variant; otherwise the variant raises
`VariantUnavailable` with the reason, and nothing runs in its place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import torch
from torch import Tensor

from prefixlm_attn.backends.base import Unavailable
from prefixlm_attn.masks import block_classes, device_token_tables
from prefixlm_attn.passes import PassPlan, empty_lse
from prefixlm_attn.phases import phase

from prefixlm_attn.byte_model import ByteCounts, LengthsSummary

SPARSE, MASKED = "sparse", "masked"
FORMS = {"fa4_single_pass_sparse": SPARSE, "fa4_single_pass_masked": MASKED}
SPARSE_BLOCK = (128, 128)          # FA4 sm90 tiles for head dim <= 128 (forward 128 x 128, backward 2 x 64 x 128)
SPARSE_MAX_HEAD_DIM = 128


class VariantUnavailable(RuntimeError):
    """The variant has no kernel on this backend (or for this shape); `.unavailable` says why."""

    def __init__(self, unavailable: Unavailable) -> None:
        super().__init__(unavailable.reason)
        self.unavailable = unavailable


@dataclass(frozen=True)
class BlockSparsity:
    """Tile lists of one direction: for each row tile, how many and which column tiles are partial
    (`mask_*`, run with the mask_mod) and wholly visible (`full_*`, run without it); [1, 1, R] and
    [1, 1, R, C] int32 (heads broadcast), valid entries packed left in ascending order.
    Forward rows are query tiles; backward rows are key tiles."""
    mask_cnt: Tensor
    mask_idx: Tensor
    full_cnt: Tensor
    full_idx: Tensor
    block: tuple[int, int]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.mask_cnt, self.mask_idx, self.full_cnt, self.full_idx))


@dataclass(frozen=True)
class SinglePassInputs:
    """What a single-pass kernel call needs besides q/k/v: the form, the lengths, and for `sparse` the
    per-token tables (aux tensors of the mask_mod) and the direction's tiles."""
    form: str
    cu_seqlens: Tensor
    prefix_lens: Tensor           # int32 [n]; zeros for a causal op
    total: int
    max_seqlen: int
    softmax_scale: float
    doc: Optional[Tensor] = None          # sparse: int32 [total], document of each token
    prefix_end: Optional[Tensor] = None   # sparse: int32 [total], absolute row where its prefix ends
    tiles: Optional[BlockSparsity] = None


class SinglePassBackend(Protocol):
    def single_pass_forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *,
                            inputs: SinglePassInputs) -> Tensor:
        """Write `out` rows [0, total); return lse [heads, rows] float32 (rows past total unspecified)."""
        ...

    def single_pass_backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                             dq: Tensor, dk: Tensor, dv: Tensor, *, inputs: SinglePassInputs) -> None:
        """Write dq/dk/dv rows [0, total)."""
        ...


def pack_tiles(rows: Tensor) -> tuple[Tensor, Tensor]:
    """bool [R, C] -> (count [1, 1, R], index [1, 1, R, C]) int32, true columns first in ascending order."""
    cnt = rows.sum(-1, dtype=torch.int32)
    order = torch.sort((~rows).to(torch.int8), dim=-1, stable=True).indices.to(torch.int32)
    return cnt[None, None].contiguous(), order[None, None].contiguous()


def tile_lists(partial: Tensor, full: Tensor, direction: str, block: tuple[int, int]) -> BlockSparsity:
    """The direction's tile lists: forward by query tile, backward by key tile (the transpose)."""
    if direction == "backward":
        partial, full = partial.t().contiguous(), full.t().contiguous()
    mc, mi = pack_tiles(partial)
    fc, fi = pack_tiles(full)
    return BlockSparsity(mask_cnt=mc, mask_idx=mi, full_cnt=fc, full_idx=fi, block=block)


def build_inputs(plan: PassPlan, form: str, direction: str) -> SinglePassInputs:
    """The kernel's inputs from the plan, on the plan's device (no host round trip)."""
    prefix = torch.zeros_like(plan.prefix_lens) if plan.is_causal else plan.prefix_lens
    prefix = prefix.to(torch.int32).contiguous()
    cu = plan.cu_seqlens.to(torch.int32).contiguous()
    base = dict(form=form, cu_seqlens=cu, prefix_lens=prefix, total=plan.total, max_seqlen=plan.max_total,
                softmax_scale=plan.softmax_scale)
    if form == MASKED:
        return SinglePassInputs(**base)
    tables = device_token_tables(cu, prefix, plan.total)
    partial, full = block_classes(tables, plan.total, *SPARSE_BLOCK)
    return SinglePassInputs(**base, doc=tables.doc.contiguous(), prefix_end=tables.prefix_end.contiguous(),
                            tiles=tile_lists(partial, full, direction, SPARSE_BLOCK))


def availability(variant: str, backend, head_dim: Optional[int] = None) -> Optional[Unavailable]:
    """None when `backend` runs `variant` (for `head_dim`, when given), else why not."""
    if variant not in backend.single_pass_variants:
        offered = ", ".join(backend.single_pass_variants) or "none"
        return Unavailable(f"{variant} has no kernel on backend {backend.name} (its single-pass variants: {offered})")
    if head_dim is not None and FORMS[variant] == SPARSE and head_dim > SPARSE_MAX_HEAD_DIM:
        return Unavailable(f"{variant}: FA4's sm90 tiles match 128 x 128 sparse blocks only up to head dim "
                           f"{SPARSE_MAX_HEAD_DIM} (got {head_dim})")
    return None


def _require(plan: PassPlan, variant: str, head_dim: int) -> SinglePassBackend:
    why = availability(variant, plan.backend, head_dim)
    if why is not None:
        raise VariantUnavailable(why)
    return plan.backend  # type: ignore[return-value]


def forward_body(variant: str):
    form = FORMS[variant]

    def forward(plan: PassPlan, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One launch with the mask inside the kernel; the block mask is built first, timed on its own."""
        backend = _require(plan, variant, q.shape[-1])
        out = torch.empty_like(q)
        lse = empty_lse(q)
        if plan.total > 0:
            with phase("fwd.block_mask"):
                inputs = build_inputs(plan, form, "forward")
            with phase("fwd.single_pass"):
                lse = backend.single_pass_forward(q, k, v, out, inputs=inputs)
        with phase("fwd.pad_zero"):
            out[plan.total:] = 0
        return out, lse, empty_lse(q)
    return forward


def backward_body(variant: str):
    form = FORMS[variant]

    def backward(plan: PassPlan, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                 _unused: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One backward launch writes every row of every sequence: no second buffers, no fill, no add."""
        backend = _require(plan, variant, q.shape[-1])
        with phase("bwd.alloc"):
            dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        if plan.total > 0:
            with phase("bwd.block_mask"):
                inputs = build_inputs(plan, form, "backward")
            with phase("bwd.single_pass"):
                backend.single_pass_backward(dout, q, k, v, out, lse, dq, dk, dv, inputs=inputs)
        with phase("bwd.pad_zero"):
            for t in (dq, dk, dv):
                t[plan.total:] = 0
        return dq, dk, dv
    return backward


def tile_list_bytes(total_tokens: int) -> int:
    """Bytes of one direction's tile lists (counts and indices, partial and full) for `total_tokens`."""
    r = -(-max(total_tokens, 1) // SPARSE_BLOCK[0])
    c = -(-max(total_tokens, 1) // SPARSE_BLOCK[1])
    return 2 * 4 * (max(r, c) + r * c)


def byte_model(variant: str):

    def bytes_of(s: "LengthsSummary") -> "ByteCounts":
        tables = 2 * 4 * s.total_tokens if FORMS[variant] == SPARSE else 0
        tiles = tile_list_bytes(s.total_tokens) if FORMS[variant] == SPARSE else 0
        return ByteCounts(allocated=3 * s.token_budget * s.row_bytes + tables + tiles, zero_filled=0, added=0,
                          padding_zeroed=3 * (s.token_budget - s.total_tokens) * s.row_bytes)
    return bytes_of
