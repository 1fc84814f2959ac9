"""Pure-PyTorch varlen attention that keeps a kernel's contract to the row (FA3's unless told another).

It writes exactly the rows the mirrored kernel writes (contracts.py, docs/DESIGN.md), leaves the others
untouched, and fails where it fails: mirroring FA3, a backward with `max_seqlen_q == 0` raises the
CUTLASS error and, as on the GPU, the "context" is dead afterwards, so every later call in this process
raises too; mirroring FA4, the empty pass does what FA4 was measured to do. That lets the CPU exercise
the same crash isolation and the same row bookkeeping as the H100.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from prefixlm_attn.backends.base import CUTLASS_BWD_ERROR, KernelCrash, Unavailable, check_direction
from prefixlm_attn.backends.contracts import KernelContract, contract_for
from prefixlm_attn.masks import sequence_mask

_dead_reason: Optional[str] = None


def reset_dead_context() -> None:
    """Forget an earlier crash (tests, and in-process runs; on a GPU the process would have to restart)."""
    global _dead_reason
    _dead_reason = None


def _check_alive() -> None:
    if _dead_reason is not None:
        raise KernelCrash(f"CUDA error: context unusable after an earlier kernel failure ({_dead_reason})"
                          " [reference backend mirrors FA3]")


def _spans(cu: Tensor, used: Optional[Tensor]) -> list[tuple[int, int]]:
    """(start, length) per sequence: `seqused` when given, else the `cu_seqlens` span."""
    cu_l = [int(x) for x in cu.tolist()]
    n = len(cu_l) - 1
    if used is None:
        return [(cu_l[b], cu_l[b + 1] - cu_l[b]) for b in range(n)]
    used_l = [int(x) for x in used[:n].tolist()]
    return [(cu_l[b], used_l[b]) for b in range(n)]


def _visible(lq: int, lk: int, causal: bool, device: torch.device) -> Optional[Tensor]:
    """Bottom-right causal mask [lq, lk] (None when bidirectional)."""
    if not causal:
        return None
    i = torch.arange(lq, device=device)[:, None]
    j = torch.arange(lk, device=device)[None, :]
    return j <= i + (lk - lq)


class ReferenceBackend:
    kind = "reference"
    single_pass_variants: tuple[str, ...] = ("fa4_single_pass_sparse", "fa4_single_pass_masked")

    def __init__(self, contract: str = "fa3") -> None:
        self.contract: KernelContract = contract_for(contract)
        self.name = "reference" if contract == "fa3" else f"reference@{contract}"

    def availability(self, direction: str = "backward") -> Optional[Unavailable]:
        check_direction(direction)
        return None

    def available(self) -> bool:
        return True

    def check_supported(self, *, head_dim: int, dtype: str) -> Optional[Unavailable]:
        return None

    def version_info(self) -> dict:
        return {"package": "torch", "version": torch.__version__, "mirrors": self.contract.kernel}

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens_q: Tensor,
                cu_seqlens_k: Tensor, seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool, softmax_scale: float) -> Tensor:
        _check_alive()
        if max_seqlen_q == 0 and self.contract.empty_forward == "raise":
            raise RuntimeError(f"{self.contract.kernel} forward refuses max_seqlen_q=0 [reference mirror]")
        heads = q.shape[1]
        lse = torch.full((heads, q.shape[0]), float("-inf"), dtype=torch.float32, device=q.device)
        for (qs, lq), (ks, lk) in zip(_spans(cu_seqlens_q, seqused_q), _spans(cu_seqlens_k, seqused_k)):
            if lq <= 0:
                continue
            qf = q[qs:qs + lq].float()
            kf = k[ks:ks + lk].float()
            vf = v[ks:ks + lk].float()
            s = torch.einsum("qhd,khd->hqk", qf, kf) * softmax_scale
            mask = _visible(lq, lk, causal, q.device)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            row_lse = torch.logsumexp(s, dim=-1)                         # [h, lq]
            p = torch.exp(s - row_lse[..., None]).nan_to_num(0.0)       # rows that see no key: 0
            out[qs:qs + lq] = torch.einsum("hqk,khd->qhd", p, vf).to(out.dtype)
            lse[:, qs:qs + lq] = row_lse
        return lse

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                 seqused_q: Optional[Tensor], seqused_k: Optional[Tensor], max_seqlen_q: int,
                 max_seqlen_k: int, causal: bool, softmax_scale: float) -> None:
        global _dead_reason
        _check_alive()
        if max_seqlen_q == 0:
            if self.contract.empty_backward == "crash":
                _dead_reason = CUTLASS_BWD_ERROR
                raise KernelCrash(CUTLASS_BWD_ERROR)
            if self.contract.empty_backward == "raise":
                raise RuntimeError(f"{self.contract.kernel} backward refuses max_seqlen_q=0 [reference mirror]")
            return
        for (qs, lq), (ks, lk) in zip(_spans(cu_seqlens_q, seqused_q), _spans(cu_seqlens_k, seqused_k)):
            if lk <= 0:  # the kernel may still convert its zeroed dQ accumulator for the sequence's queries
                if self.contract.zero_key_writes_dq:
                    dq[qs:qs + max(lq, 0)] = 0
                continue
            if lq <= 0:  # the kernel may still write the sequence's key rows: zero gradient
                if self.contract.zero_query_writes_dkdv:
                    dk[ks:ks + lk] = 0
                    dv[ks:ks + lk] = 0
                continue
            qf, kf, vf = q[qs:qs + lq].float(), k[ks:ks + lk].float(), v[ks:ks + lk].float()
            do = dout[qs:qs + lq].float()
            o = out[qs:qs + lq].float()
            s = torch.einsum("qhd,khd->hqk", qf, kf) * softmax_scale
            mask = _visible(lq, lk, causal, q.device)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            p = torch.exp(s - softmax_lse[:, qs:qs + lq, None]).nan_to_num(0.0)
            dvf = torch.einsum("hqk,qhd->khd", p, do)
            dp = torch.einsum("qhd,khd->hqk", do, vf)
            delta = (do * o).sum(-1).transpose(0, 1)[..., None]          # [h, lq, 1]
            ds = p * (dp - delta)
            dq[qs:qs + lq] = (torch.einsum("hqk,khd->qhd", ds, kf) * softmax_scale).to(dq.dtype)
            dk[ks:ks + lk] = (torch.einsum("hqk,qhd->khd", ds, qf) * softmax_scale).to(dk.dtype)
            dv[ks:ks + lk] = dvf.to(dv.dtype)

    # --- single pass (prefixlm_attn/single_pass.py): the same PrefixLM x document predicate, in PyTorch ---

    def single_pass_forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, inputs) -> Tensor:
        """Both forms give the same rows: per sequence, keys in its prefix or not after the query. The
        sparse form walks its tile lists as the kernel does (full tiles unmasked, partial ones through the
        per-token tables, others skipped), so a wrong list changes the result."""
        _check_alive()
        if inputs.tiles is not None:
            return _tiled_forward(q, k, v, out, inputs)
        lse = torch.full((q.shape[1], q.shape[0]), float("-inf"), dtype=torch.float32, device=q.device)
        for start, length, prefix in _single_pass_sequences(inputs):
            sl = slice(start, start + length)
            s = torch.einsum("qhd,khd->hqk", q[sl].float(), k[sl].float()) * inputs.softmax_scale
            s = s.masked_fill(~sequence_mask(length, prefix, q.device), float("-inf"))
            row_lse = torch.logsumexp(s, dim=-1)
            out[sl] = torch.einsum("hqk,khd->qhd", torch.exp(s - row_lse[..., None]), v[sl].float()).to(out.dtype)
            lse[:, sl] = row_lse
        return lse

    def single_pass_backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                             dq: Tensor, dk: Tensor, dv: Tensor, *, inputs) -> None:
        _check_alive()
        if inputs.tiles is not None:
            _tiled_backward(dout, q, k, v, out, softmax_lse, dq, dk, dv, inputs)
            return
        for start, length, prefix in _single_pass_sequences(inputs):
            sl = slice(start, start + length)
            qf, kf, vf, do, o = (t[sl].float() for t in (q, k, v, dout, out))
            s = torch.einsum("qhd,khd->hqk", qf, kf) * inputs.softmax_scale
            s = s.masked_fill(~sequence_mask(length, prefix, q.device), float("-inf"))
            p = torch.exp(s - softmax_lse[:, sl, None])
            ds = p * (torch.einsum("qhd,khd->hqk", do, vf) - (do * o).sum(-1).transpose(0, 1)[..., None])
            dq[sl] = (torch.einsum("hqk,khd->qhd", ds, kf) * inputs.softmax_scale).to(dq.dtype)
            dk[sl] = (torch.einsum("hqk,qhd->khd", ds, qf) * inputs.softmax_scale).to(dk.dtype)
            dv[sl] = torch.einsum("hqk,qhd->khd", p, do).to(dv.dtype)


def _single_pass_sequences(inputs) -> list[tuple[int, int, int]]:
    """(start, length, prefix) of each non-empty sequence of a single-pass call."""
    cu = [int(x) for x in inputs.cu_seqlens.tolist()]
    pre = [int(x) for x in inputs.prefix_lens.tolist()]
    return [(cu[b], cu[b + 1] - cu[b], pre[b]) for b in range(len(cu) - 1) if cu[b + 1] > cu[b]]


def _listed(tiles, row: int) -> list[tuple[int, bool]]:
    """(column tile, is_full) of one row tile's lists."""
    m = int(tiles.mask_cnt[0, 0, row])
    f = int(tiles.full_cnt[0, 0, row])
    return ([(int(c), False) for c in tiles.mask_idx[0, 0, row, :m]] +
            [(int(c), True) for c in tiles.full_idx[0, 0, row, :f]])


def _tile_mask(inputs, rows: Tensor, cols: Tensor) -> Tensor:
    """The mask_mod of the sparse form on the packed sequence: same document, key in the prefix or not
    after the query (the per-token tables are the kernel's aux tensors)."""
    doc, pend = inputs.doc, inputs.prefix_end
    return (doc[rows][:, None] == doc[cols][None, :]) & ((cols[None, :] < pend[rows][:, None]) |
                                                          (cols[None, :] <= rows[:, None]))


def _tile_span(tile: int, size: int, total: int, device) -> Tensor:
    return torch.arange(tile * size, min((tile + 1) * size, total), device=device)


def _gather(inputs, row_tile: int, row_size: int, col_size: int, device, by_key: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Rows of one tile, the listed columns, and the visibility of each (row, column) pair."""
    rows = _tile_span(row_tile, row_size, inputs.total, device)
    spans, keep = [], []
    for col, is_full in _listed(inputs.tiles, row_tile):
        cols = _tile_span(col, col_size, inputs.total, device)
        spans.append(cols)
        if is_full:
            keep.append(torch.ones(rows.numel(), cols.numel(), dtype=torch.bool, device=device))
        else:
            keep.append(_tile_mask(inputs, cols, rows).t() if by_key else _tile_mask(inputs, rows, cols))
    if not spans:
        return rows, rows[:0], torch.zeros(rows.numel(), 0, dtype=torch.bool, device=device)
    return rows, torch.cat(spans), torch.cat(keep, dim=1)


def _tiled_forward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, inputs) -> Tensor:
    bq, bk = inputs.tiles.block
    lse = torch.full((q.shape[1], q.shape[0]), float("-inf"), dtype=torch.float32, device=q.device)
    for r in range(inputs.tiles.mask_cnt.shape[-1]):
        rows, cols, keep = _gather(inputs, r, bq, bk, q.device, by_key=False)
        s = torch.einsum("qhd,khd->hqk", q[rows].float(), k[cols].float()) * inputs.softmax_scale
        s = s.masked_fill(~keep[None], float("-inf"))
        row_lse = torch.logsumexp(s, dim=-1)
        p = torch.exp(s - row_lse[..., None]).nan_to_num(0.0)
        out[rows] = torch.einsum("hqk,khd->qhd", p, v[cols].float()).to(out.dtype)
        lse[:, rows] = row_lse
    return lse


def _tiled_backward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dq: Tensor,
                    dk: Tensor, dv: Tensor, inputs) -> None:
    """By key tile over its listed query tiles (the backward lists), dQ accumulated in float32."""
    bq, bk = inputs.tiles.block
    dq_acc = torch.zeros(inputs.total, *q.shape[1:], dtype=torch.float32, device=q.device)
    delta = (dout[:inputs.total].float() * out[:inputs.total].float()).sum(-1).transpose(0, 1)   # [h, total]
    for c in range(inputs.tiles.mask_cnt.shape[-1]):
        keys, rows, keep = _gather(inputs, c, bk, bq, q.device, by_key=True)    # keep: [keys, rows]
        kf, vf = k[keys].float(), v[keys].float()
        if rows.numel() == 0:
            dk[keys], dv[keys] = 0, 0
            continue
        qf, do = q[rows].float(), dout[rows].float()
        s = torch.einsum("qhd,khd->hqk", qf, kf) * inputs.softmax_scale
        p = torch.exp(s - lse[:, rows, None]).masked_fill(~keep.t()[None], 0.0)
        ds = p * (torch.einsum("qhd,khd->hqk", do, vf) - delta[:, rows, None])
        dv[keys] = torch.einsum("hqk,qhd->khd", p, do).to(dv.dtype)
        dk[keys] = (torch.einsum("hqk,qhd->khd", ds, qf) * inputs.softmax_scale).to(dk.dtype)
        dq_acc.index_add_(0, rows, torch.einsum("hqk,khd->qhd", ds, kf) * inputs.softmax_scale)
    dq[:inputs.total] = dq_acc.to(dq.dtype)
