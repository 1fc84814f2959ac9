"""Pure-PyTorch varlen attention that keeps FA3's contract to the row.

It writes exactly the rows FA3 writes (see docs/DESIGN.md), leaves the others untouched, and fails
where FA3 fails: a backward with `max_seqlen_q == 0` raises the CUTLASS error and, as on the GPU,
the "context" is dead afterwards, so every later call in this process raises too. That lets the
CPU exercise the same crash isolation and the same row bookkeeping as the H100.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from prefixlm_attn.backends.base import CUTLASS_BWD_ERROR, KernelCrash

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
    name = "reference"

    def available(self) -> bool:
        return True

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens_q: Tensor,
                cu_seqlens_k: Tensor, seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool, softmax_scale: float) -> Tensor:
        _check_alive()
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
            _dead_reason = CUTLASS_BWD_ERROR
            raise KernelCrash(CUTLASS_BWD_ERROR)
        for (qs, lq), (ks, lk) in zip(_spans(cu_seqlens_q, seqused_q), _spans(cu_seqlens_k, seqused_k)):
            if lk <= 0:  # FA3 still converts its zeroed dQ accumulator for the sequence's queries
                dq[qs:qs + max(lq, 0)] = 0
                continue
            if lq <= 0:  # FA3 still writes the sequence's key rows: zero gradient
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
