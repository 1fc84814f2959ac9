"""The key split: the same PrefixLM pairs as two varlen passes cut by keys instead of queries.

- Pass A (non-causal): every query of a sequence against its prefix keys. `cu_seqlens` for Q and
  K, queries over the whole sequence (`seqused_q=None`: the `cu_seqlens` span), `seqused_k = prefix_lens`.
- Pass B (causal): response queries against response keys. `cu_seqlens + prefix_lens` for Q and K,
  `seqused_q = seqused_k = causal_lens`.

Forward: both passes give a partial out and log-sum-exp; one fused kernel merges them on response
rows (prefix rows see prefix keys only, so A's result is theirs). Backward: both passes run with the
merged out and lse, so each computes its share of the exact gradient. Their dK/dV rows are
disjoint (A: prefix keys, B: response keys), so they share one dK/dV buffer with no zero-fill and
no add; only dQ of response rows is summed. B runs first: its backward may write zeros over the
whole `cu_k` span it is given, and A's prefix rows must land last (docs/DESIGN.md, row facts).
A pass with no queries or no keys is skipped. With `is_causal=True` (plain causal attention) pass A
would need top-left causal alignment, which the kernels lack, so the op runs `prefix_rows_add`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from prefixlm_attn.passes import PassPlan, empty_lse
from prefixlm_attn.phases import phase
from prefixlm_attn.response_rows import add_response_rows_, merge_response_rows_


def prefix_keys_kwargs(plan: PassPlan) -> dict:
    """Pass A: all queries of each sequence vs its prefix keys, non-causal."""
    return dict(cu_seqlens_q=plan.cu_seqlens, cu_seqlens_k=plan.cu_seqlens,
                seqused_q=None, seqused_k=plan.prefix_lens,
                max_seqlen_q=plan.max_total, max_seqlen_k=plan.max_prefix,
                causal=False, softmax_scale=plan.softmax_scale)


def response_keys_kwargs(plan: PassPlan) -> dict:
    """Pass B: response queries vs response keys, causal."""
    return dict(cu_seqlens_q=plan.cu_seqlens_causal_q, cu_seqlens_k=plan.cu_seqlens_causal_q,
                seqused_q=plan.causal_lens, seqused_k=plan.causal_lens,
                max_seqlen_q=plan.max_causal, max_seqlen_k=plan.max_causal,
                causal=True, softmax_scale=plan.softmax_scale)


def key_split_forward(plan: PassPlan, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(out, merged lse, placeholder lse): the op's forward outputs, lse in the first slot."""
    run_a, run_b = plan.max_prefix > 0, plan.max_causal > 0
    out = torch.empty_like(q)
    lse = None
    if run_a:
        with phase("fwd.bidir_pass"):
            lse = plan.backend.forward(q, k, v, out, **prefix_keys_kwargs(plan))
    if run_b:
        out_b = torch.empty_like(q) if run_a else out
        with phase("fwd.causal_pass"):
            lse_b = plan.backend.forward(q, k, v, out_b, **response_keys_kwargs(plan))
        if run_a:
            with phase("fwd.merge"):
                lse = merge_response_rows_(out, lse, out_b, lse_b, plan.row_is_prefix, plan.total)
        else:
            lse = lse_b
    with phase("fwd.pad_zero"):
        out[plan.total:] = 0
    return out, lse if lse is not None else empty_lse(q), empty_lse(q)


def key_split_backward(plan: PassPlan, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                       lse: Tensor, _unused_lse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """dq, dk, dv with one shared dK/dV buffer; dQ of response rows summed over both passes."""
    run_a, run_b = plan.max_prefix > 0, plan.max_causal > 0
    with phase("bwd.alloc"):
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dq_b = torch.empty_like(q) if (run_a and run_b) else dq
    if run_b:
        with phase("bwd.causal_pass"):
            plan.backend.backward(dout, q, k, v, out, lse, dq_b, dk, dv, **response_keys_kwargs(plan))
    if run_a:
        with phase("bwd.bidir_pass"):
            plan.backend.backward(dout, q, k, v, out, lse, dq, dk, dv, **prefix_keys_kwargs(plan))
    with phase("bwd.pad_zero"):
        for t in (dq, dk, dv):
            t[plan.total:] = 0
    if run_a and run_b:
        with phase("bwd.accumulate"):
            add_response_rows_(dq, dq_b, plan.row_is_prefix, plan.total)
    return dq, dk, dv
