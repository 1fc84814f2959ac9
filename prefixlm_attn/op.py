"""The PrefixLM op: `torch.library` custom ops (with fake impls); the forward op's backward is the backward op,
attached with `torch.library.register_autograd`.

The variant and backend are string arguments of the custom ops, so one compiled graph can hold
any variant and `torch.compile` treats the two passes as opaque calls, as training does.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from prefixlm_attn.backends import resolve_backend_name
from prefixlm_attn.backends.base import default_softmax_scale
from prefixlm_attn.metadata import BatchMetadata
from prefixlm_attn.passes import PassPlan, query_split_forward
from prefixlm_attn.variants import DEFAULT_VARIANT, get_variant


@torch.library.custom_op("prefixbench::prefixlm_fwd", mutates_args=())
def prefixlm_fwd(q: Tensor, k: Tensor, v: Tensor, prefix_lens: Tensor, causal_lens: Tensor, cu_seqlens: Tensor,
                 row_is_prefix: Tensor, total_tokens: Tensor, num_seqs: Tensor, max_prefix: Tensor,
                 max_causal: Tensor, max_total: Tensor, is_causal: bool, softmax_scale: float, variant: str,
                 backend: str, pair_counts: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    spec = get_variant(variant)
    plan = PassPlan.from_op_args(backend, prefix_lens, causal_lens, cu_seqlens, row_is_prefix, total_tokens,
                                 num_seqs, max_prefix, max_causal, max_total, is_causal, softmax_scale,
                                 pair_counts=pair_counts)
    if spec.forward is not None:
        return spec.forward(plan, q, k, v)
    return query_split_forward(plan, q, k, v, skip_empty_prefix=spec.skip_empty_prefix,
                               skip_empty_causal=spec.skip_empty_causal)


@prefixlm_fwd.register_fake
def _prefixlm_fwd_fake(q, k, v, prefix_lens, causal_lens, cu_seqlens, row_is_prefix, total_tokens, num_seqs,
                       max_prefix, max_causal, max_total, is_causal, softmax_scale, variant, backend,
                       pair_counts=None):
    lse_shape = (q.shape[1], q.shape[0])
    return (torch.empty_like(q), q.new_empty(lse_shape, dtype=torch.float32),
            q.new_empty(lse_shape, dtype=torch.float32))


@torch.library.custom_op("prefixbench::prefixlm_bwd", mutates_args=())
def prefixlm_bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse_bidir: Tensor, lse_causal: Tensor,
                 prefix_lens: Tensor, causal_lens: Tensor, cu_seqlens: Tensor, row_is_prefix: Tensor,
                 total_tokens: Tensor, num_seqs: Tensor, max_prefix: Tensor, max_causal: Tensor,
                 max_total: Tensor, is_causal: bool, softmax_scale: float, variant: str,
                 backend: str, pair_counts: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    plan = PassPlan.from_op_args(backend, prefix_lens, causal_lens, cu_seqlens, row_is_prefix, total_tokens,
                                 num_seqs, max_prefix, max_causal, max_total, is_causal, softmax_scale,
                                 pair_counts=pair_counts)
    dout = dout.contiguous()
    return get_variant(variant).backward(plan, dout, q, k, v, out, lse_bidir, lse_causal)


@prefixlm_bwd.register_fake
def _prefixlm_bwd_fake(dout, q, k, v, out, lse_bidir, lse_causal, prefix_lens, causal_lens, cu_seqlens,
                       row_is_prefix, total_tokens, num_seqs, max_prefix, max_causal, max_total, is_causal,
                       softmax_scale, variant, backend, pair_counts=None):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs: tuple, output: tuple) -> None:
    """Saves what the backward op reads: the inputs, the forward's output and both passes' lse."""
    q, k, v, *meta = inputs[:12]
    is_causal, softmax_scale, variant, backend, pair_counts = inputs[12:]
    out, lse_bidir, lse_causal = output
    ctx.mark_non_differentiable(lse_bidir, lse_causal)
    ctx.save_for_backward(q, k, v, out, lse_bidir, lse_causal, *meta, pair_counts)
    ctx.options = (is_causal, softmax_scale, variant, backend)


def _backward(ctx, dout: Tensor, _dlse_bidir: Optional[Tensor], _dlse_causal: Optional[Tensor]) -> tuple:
    """dq, dk, dv from the backward op; the metadata and options take no gradient."""
    q, k, v, out, lse_bidir, lse_causal, *meta, pair_counts = ctx.saved_tensors
    dq, dk, dv = prefixlm_bwd(dout, q, k, v, out, lse_bidir, lse_causal, *meta, *ctx.options, pair_counts)
    return (dq, dk, dv) + (None,) * _NON_DIFFERENTIABLE_INPUTS


_NON_DIFFERENTIABLE_INPUTS = len(prefixlm_fwd._opoverload._schema.arguments) - 3      # all but q, k, v
torch.library.register_autograd("prefixbench::prefixlm_fwd", _backward, setup_context=_setup_context)


def prefixlm_attention(q: Tensor, k: Tensor, v: Tensor, meta: BatchMetadata, *, variant: str = DEFAULT_VARIANT,
                       backend: str = "auto", is_causal: bool = False,
                       softmax_scale: Optional[float] = None) -> Tensor:
    """PrefixLM attention over a packed batch `[T, heads, head_dim]`; padding rows come back zero.

    `is_causal=True` makes the prefix pass causal too (plain causal attention through the same passes).
    """
    if q.shape[0] != meta.token_budget:
        raise ValueError(f"q has {q.shape[0]} rows but the metadata's token budget is {meta.token_budget}")
    get_variant(variant)
    scale = default_softmax_scale(q.shape[-1]) if softmax_scale is None else float(softmax_scale)
    out, _, _ = prefixlm_fwd(q, k, v, *meta.op_args(), is_causal, scale, variant, resolve_backend_name(backend),
                             meta.pair_counts)
    return out
