"""The PrefixLM x document predicate, written once: who may attend whom in a packed batch.

Per token row of a packed batch: its document (sequence) index (-1 for padding), its position in the
document and the document's prefix length. Query row i sees key row j iff both are in the same
document and j lies in the prefix or j <= i (`is_causal`: j <= i only). Every other mask in the project
(the dense reference, the reference backend's single pass, the FlexAttention and SDPA peers, the FA4
mask_mod's PyTorch mirror and its block classes) evaluates this predicate or its interval form.

Interval form: within a document the visible keys of a query are contiguous, [doc_start, max(prefix_end,
i + 1)), so a tile of queries x keys is wholly visible, wholly invisible or partial by comparing the
tile's edges with its queries' interval ends; `block_classes` does that on the device, without a T x T mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenTables:
    """Per token row (length = token budget): document, position in it, its prefix length, and where the
    document starts (absolute row). Padding rows: doc -1, start = the row itself, prefix 0."""
    doc: Tensor
    pos: Tensor
    plen: Tensor
    start: Tensor

    @property
    def prefix_end(self) -> Tensor:
        """Absolute row where each token's document prefix ends."""
        return self.start + self.plen


def token_tables(prefix_lens: Sequence[int], causal_lens: Sequence[int], token_budget: int,
                 device: torch.device | str = "cpu") -> TokenTables:
    """The per-row tables of a packed batch, built on the host from the lengths (small: O(T))."""
    doc = torch.full((token_budget,), -1, dtype=torch.int32)
    pos = torch.zeros(token_budget, dtype=torch.int32)
    plen = torch.zeros(token_budget, dtype=torch.int32)
    start = torch.arange(token_budget, dtype=torch.int32)
    row = 0
    for s, (p, c) in enumerate(zip(prefix_lens, causal_lens)):
        n = p + c
        doc[row:row + n] = s
        pos[row:row + n] = torch.arange(n, dtype=torch.int32)
        plen[row:row + n] = p
        start[row:row + n] = row
        row += n
    return TokenTables(*(t.to(device) for t in (doc, pos, plen, start)))


def device_token_tables(cu_seqlens: Tensor, prefix_lens: Tensor, token_budget: int) -> TokenTables:
    """The same tables built on the lengths' device from `cu_seqlens` [n+1] and `prefix_lens` [n]
    (no host round trip: the FA4 single pass builds its mask inputs with this inside its timed phase)."""
    device = cu_seqlens.device
    rows = torch.arange(token_budget, device=device, dtype=torch.int32)
    cu = cu_seqlens.to(torch.int32)
    n = cu.numel() - 1
    # document of each row: how many sequence ends are <= row (rows past the last sequence -> n)
    doc = torch.searchsorted(cu[1:].contiguous(), rows, right=True).to(torch.int32)
    live = doc < n
    safe = doc.clamp(max=max(n - 1, 0)).long()
    start = torch.where(live, cu[:-1][safe] if n > 0 else rows, rows).to(torch.int32)
    plen = torch.where(live, prefix_lens.to(torch.int32)[safe] if n > 0 else rows * 0, 0).to(torch.int32)
    return TokenTables(doc=torch.where(live, doc, -1).to(torch.int32), pos=(rows - start).to(torch.int32),
                       plen=plen, start=start)


def visible(t: TokenTables, q_idx: Tensor, kv_idx: Tensor, is_causal: bool = False) -> Tensor:
    """The predicate on (broadcastable) index tensors: query row q_idx may attend key row kv_idx."""
    same = (t.doc[q_idx] == t.doc[kv_idx]) & (t.doc[q_idx] >= 0)
    if is_causal:
        return same & (kv_idx <= q_idx)
    return same & ((t.pos[kv_idx] < t.plen[kv_idx]) | (kv_idx <= q_idx))


def dense_mask(t: TokenTables, rows: int | None = None, is_causal: bool = False) -> Tensor:
    """Boolean [R, R] (R = `rows` or the token budget): the predicate on the full index grid."""
    n = t.doc.numel() if rows is None else rows
    idx = torch.arange(n, device=t.doc.device)
    return visible(t, idx[:, None], idx[None, :], is_causal)


def sequence_mask(length: int, prefix: int, device: torch.device | str = "cpu", is_causal: bool = False) -> Tensor:
    """[length, length] for one sequence: key j visible to query i iff j < prefix or j <= i."""
    return dense_mask(token_tables([prefix], [length - prefix], length, device), is_causal=is_causal)


def key_interval(t: TokenTables, is_causal: bool = False) -> tuple[Tensor, Tensor]:
    """Per query row, its visible keys as [lo, hi) (absolute rows); padding rows: an empty interval."""
    rows = torch.arange(t.doc.numel(), device=t.doc.device, dtype=torch.int64)
    lo = t.start.long()
    hi = rows + 1 if is_causal else torch.maximum(t.prefix_end.long(), rows + 1)
    pad = t.doc < 0
    return torch.where(pad, rows, lo), torch.where(pad, rows, hi)


def block_classes(t: TokenTables, total: int, block_q: int, block_k: int,
                  is_causal: bool = False) -> tuple[Tensor, Tensor]:
    """(partial, full) bool [Mb, Nb] over the first `total` rows in tiles of block_q x block_k:
    full = every (query, key) pair of the tile visible (a tile run without the mask), partial = some;
    neither = skipped. Keys past `total` do not exist; queries past `total` are not in any tile."""
    device = t.doc.device
    lo, hi = key_interval(t, is_causal)
    lo, hi = lo[:total], hi[:total]
    mb, nb = -(-total // block_q), -(-total // block_k)
    pad = mb * block_q - total
    big = torch.iinfo(torch.int64).max // 4
    lo_any = torch.cat([lo, lo.new_full((pad,), big)]).view(mb, block_q)
    hi_any = torch.cat([hi, hi.new_full((pad,), -1)]).view(mb, block_q)
    lo_all = torch.cat([lo, lo.new_full((pad,), -1)]).view(mb, block_q)
    hi_all = torch.cat([hi, hi.new_full((pad,), big)]).view(mb, block_q)
    c0 = torch.arange(nb, device=device, dtype=torch.int64) * block_k
    c1 = torch.clamp(c0 + block_k, max=total)
    some = ((lo_any[:, :, None] < c1) & (hi_any[:, :, None] > c0)).any(1)
    full = (lo_all.max(1).values[:, None] <= c0) & (hi_all.min(1).values[:, None] >= c1)
    return some & ~full, full


__all__ = ["TokenTables", "block_classes", "dense_mask", "device_token_tables", "key_interval",
           "sequence_mask", "token_tables", "visible"]
