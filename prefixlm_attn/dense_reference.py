"""The ground truth: PrefixLM attention with an explicit dense mask, in float64 (or float32).

Per sequence, query i sees key j when j lies in the prefix or j <= i (the predicate of masks.py).
Nothing here shares code with the two-pass varlen backends (they never build a mask), so agreement
between the two means something.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from prefixlm_attn.masks import dense_mask, token_tables


def prefixlm_mask(prefix_lens: Sequence[int], causal_lens: Sequence[int], token_budget: int,
                  is_causal: bool = False) -> Tensor:
    """Boolean [T, T]: query row i may attend key row j. Padding rows attend nothing."""
    return dense_mask(token_tables(prefix_lens, causal_lens, token_budget), is_causal=is_causal)


def attended_pairs(prefix_lens: Sequence[int], causal_lens: Sequence[int]) -> int:
    """How many (query, key) pairs PrefixLM attends: p^2 for the prefix, sum over responses of p+i+1."""
    total = 0
    for p, c in zip(prefix_lens, causal_lens):
        total += p * p + c * p + c * (c + 1) // 2
    return total


def dense_prefixlm_attention(q: Tensor, k: Tensor, v: Tensor, prefix_lens: Sequence[int],
                             causal_lens: Sequence[int], dtype: torch.dtype = torch.float64,
                             is_causal: bool = False, softmax_scale: float | None = None) -> Tensor:
    """out [T, H, D] in `dtype`, differentiable; padding rows are zero.

    Sequences never see each other, so the dense [T, T] mask is block-diagonal; each block is
    applied on its own (the same arithmetic, without a T^2 tensor for large batches).
    """
    scale = q.shape[-1] ** -0.5 if softmax_scale is None else softmax_scale
    pieces, start = [], 0
    for p, c in zip(prefix_lens, causal_lens):
        n = p + c
        if n == 0:
            continue
        mask = prefixlm_mask([p], [c], n, is_causal).to(q.device)
        qs, ks, vs = (x[start:start + n].to(dtype) for x in (q, k, v))
        s = torch.einsum("qhd,khd->hqk", qs, ks) * scale
        s = s.masked_fill(~mask, float("-inf"))
        pieces.append(torch.einsum("hqk,khd->qhd", torch.softmax(s, dim=-1), vs))
        start += n
    pad = q.new_zeros((q.shape[0] - start, *q.shape[1:]), dtype=dtype)
    return torch.cat(pieces + [pad], dim=0)


def dense_reference_grads(q: Tensor, k: Tensor, v: Tensor, dout: Tensor, prefix_lens: Sequence[int],
                          causal_lens: Sequence[int], dtype: torch.dtype = torch.float64,
                          is_causal: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(out, dq, dk, dv) of the dense reference for upstream gradient `dout`."""
    qd, kd, vd = (x.detach().to(dtype).requires_grad_(True) for x in (q, k, v))
    out = dense_prefixlm_attention(qd, kd, vd, prefix_lens, causal_lens, dtype, is_causal)
    out.backward(dout.to(dtype))
    return out.detach(), qd.grad, kd.grad, vd.grad
