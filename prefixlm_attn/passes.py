"""The two varlen passes of one PrefixLM batch, as kernel-backend calls.

Pass 1 (bidirectional): queries and keys are each sequence's prefix (`cu_seqlens`,
`seqused_q = seqused_k = prefix_lens`). Pass 2 (causal): queries are each sequence's response
(`cu_seqlens + prefix_lens`, `seqused_q = causal_lens`), keys the whole sequence, bottom-right causal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from prefixlm_attn.backends import get_backend
from prefixlm_attn.backends.base import KernelBackend
from prefixlm_attn.phases import phase


@dataclass
class PassPlan:
    """The op's metadata cut to the live sequences, plus the scalars as Python ints."""
    backend: KernelBackend
    cu_seqlens: Tensor
    cu_seqlens_causal_q: Tensor
    prefix_lens: Tensor
    causal_lens: Tensor
    row_is_prefix: Tensor
    total: int
    num_seqs: int
    max_prefix: int
    max_causal: int
    max_total: int
    is_causal: bool
    softmax_scale: float
    pair_counts: Optional[Tensor] = None     # int64 CPU per-pass pairs (pair_counts.BatchPairs), if known

    @classmethod
    def from_op_args(cls, backend: str, prefix_lens: Tensor, causal_lens: Tensor, cu_seqlens: Tensor,
                     row_is_prefix: Tensor, total_tokens: Tensor, num_seqs: Tensor, max_prefix: Tensor,
                     max_causal: Tensor, max_total: Tensor, is_causal: bool, softmax_scale: float,
                     pair_counts: Optional[Tensor] = None) -> "PassPlan":
        n = int(num_seqs.item())
        cu = cu_seqlens[: n + 1]
        return cls(
            backend=get_backend(backend), cu_seqlens=cu, cu_seqlens_causal_q=cu + prefix_lens[: n + 1],
            prefix_lens=prefix_lens[:n], causal_lens=causal_lens[:n], row_is_prefix=row_is_prefix,
            total=int(total_tokens.item()), num_seqs=n, max_prefix=int(max_prefix.item()),
            max_causal=int(max_causal.item()), max_total=int(max_total.item()),
            is_causal=is_causal, softmax_scale=softmax_scale, pair_counts=pair_counts)

    def bidir_kwargs(self) -> dict:
        return dict(cu_seqlens_q=self.cu_seqlens, cu_seqlens_k=self.cu_seqlens,
                    seqused_q=self.prefix_lens, seqused_k=self.prefix_lens,
                    max_seqlen_q=self.max_prefix, max_seqlen_k=self.max_prefix,
                    causal=self.is_causal, softmax_scale=self.softmax_scale)

    def causal_kwargs(self) -> dict:
        return dict(cu_seqlens_q=self.cu_seqlens_causal_q, cu_seqlens_k=self.cu_seqlens,
                    seqused_q=self.causal_lens, seqused_k=None,
                    max_seqlen_q=self.max_causal, max_seqlen_k=self.max_total,
                    causal=True, softmax_scale=self.softmax_scale)

    def bidir_forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor) -> Tensor:
        return self.backend.forward(q, k, v, out, **self.bidir_kwargs())

    def causal_forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor) -> Tensor:
        return self.backend.forward(q, k, v, out, **self.causal_kwargs())

    def bidir_backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                       dq: Tensor, dk: Tensor, dv: Tensor) -> None:
        self.backend.backward(dout, q, k, v, out, lse, dq, dk, dv, **self.bidir_kwargs())

    def causal_backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                        dq: Tensor, dk: Tensor, dv: Tensor) -> None:
        self.backend.backward(dout, q, k, v, out, lse, dq, dk, dv, **self.causal_kwargs())


def query_split_forward(plan: PassPlan, q: Tensor, k: Tensor, v: Tensor, *, skip_empty_prefix: bool,
                        skip_empty_causal: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The shared forward: both passes write disjoint `out` rows; (out, lse_bidir, lse_causal)."""
    out = torch.empty_like(q)
    lse_bidir: Optional[Tensor] = None
    lse_causal: Optional[Tensor] = None
    if not (skip_empty_prefix and plan.max_prefix == 0):
        with phase("fwd.bidir_pass"):
            lse_bidir = plan.bidir_forward(q, k, v, out)
    if not (skip_empty_causal and plan.max_causal == 0):
        with phase("fwd.causal_pass"):
            lse_causal = plan.causal_forward(q, k, v, out)
    with phase("fwd.pad_zero"):
        out[plan.total:] = 0
    return out, lse_or_placeholder(lse_bidir, q), lse_or_placeholder(lse_causal, q)


def empty_lse(q: Tensor) -> Tensor:
    """Placeholder log-sum-exp for a skipped pass ([heads, rows], as FA3's varlen lse)."""
    return torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)


def lse_or_placeholder(lse: Optional[Tensor], q: Tensor) -> Tensor:
    return lse if lse is not None else empty_lse(q)
