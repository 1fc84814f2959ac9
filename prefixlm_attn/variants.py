"""The registry of op variants: how each one handles dK/dV buffers and empty passes.

A variant is data: its name, what it allocates, zero-fills and adds (in words and as a byte model),
which degenerate batches it survives, and the backward body. The CLI, the sweep, validation and
the report read this registry, so a new variant is one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor

import prefixlm_attn.auto as auto
from prefixlm_attn.backends.base import Unavailable
from prefixlm_attn.key_split import key_split_backward, key_split_forward
from prefixlm_attn.passes import PassPlan, query_split_forward
from prefixlm_attn.phases import phase
from prefixlm_attn.row_add import add_prefix_rows_
from prefixlm_attn import single_pass
from prefixlm_attn.byte_model import ByteCounts, LengthsSummary

if TYPE_CHECKING:
    from prefixlm_attn.metadata import BatchMetadata


BackwardBody = Callable[[PassPlan, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor],
                        tuple[Tensor, Tensor, Tensor]]
ForwardBody = Callable[[PassPlan, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    allocates: str
    zero_fills: str
    adds: str
    survives: str
    fails_on: str
    recommended: bool
    skip_empty_causal: bool     # forward and backward skip the causal pass when max_causal == 0
    skip_empty_prefix: bool     # ... and the bidirectional pass when max_prefix == 0
    backward: BackwardBody
    byte_model: Callable[[LengthsSummary], ByteCounts]
    forward: Optional[ForwardBody] = None   # None: the shared query-split forward (passes.py)

    def summary(self) -> dict:
        """The registry entry as plain data (for `prefixbench variants --json`)."""
        return {k: getattr(self, k) for k in ("name", "description", "allocates", "zero_fills", "adds",
                                               "survives", "fails_on", "recommended",
                                               "skip_empty_causal", "skip_empty_prefix")}


# --- backward bodies -------------------------------------------------------------------------

def _zero_padding(total: int, *tensors: Tensor) -> None:
    with phase("bwd.pad_zero"):
        for t in tensors:
            t[total:] = 0


def _two_buffer_backward(plan: PassPlan, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                         lse_bidir: Tensor, lse_causal: Tensor, *, zero_dk2: bool, guard: bool,
                         passthrough: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The upstream shape: dK1/dV1 zero-filled, dK2/dV2 separate, then dK1 += dK2 over all rows."""
    skip_causal = guard and plan.max_causal == 0
    with phase("bwd.alloc"):
        dq = torch.empty_like(q)
        dk1, dv1 = torch.empty_like(k), torch.empty_like(v)
        if not (skip_causal and passthrough):
            dk2, dv2 = torch.empty_like(k), torch.empty_like(v)
    with phase("bwd.zero_fill"):
        dk1.zero_()
        dv1.zero_()
        if zero_dk2 and not (skip_causal and passthrough):
            dk2.zero_()
            dv2.zero_()
    with phase("bwd.bidir_pass"):
        plan.bidir_backward(dout, q, k, v, out, lse_bidir, dq, dk1, dv1)
    if skip_causal and passthrough:
        _zero_padding(plan.total, dq)
        return dq, dk1, dv1
    if not skip_causal:
        with phase("bwd.causal_pass"):
            plan.causal_backward(dout, q, k, v, out, lse_causal, dq, dk2, dv2)
    _zero_padding(plan.total, dq, dk2, dv2)
    with phase("bwd.accumulate"):
        dk1.add_(dk2)
        dv1.add_(dv2)
    return dq, dk1, dv1


def _unguarded(plan, dout, q, k, v, out, lse_b, lse_c):
    return _two_buffer_backward(plan, dout, q, k, v, out, lse_b, lse_c, zero_dk2=False, guard=False, passthrough=False)


def _zeros_always(plan, dout, q, k, v, out, lse_b, lse_c):
    return _two_buffer_backward(plan, dout, q, k, v, out, lse_b, lse_c, zero_dk2=True, guard=True, passthrough=False)


def _guarded_zero_fill(plan, dout, q, k, v, out, lse_b, lse_c):
    zero = plan.max_causal == 0  # zeros_like only on the rare branch
    return _two_buffer_backward(plan, dout, q, k, v, out, lse_b, lse_c, zero_dk2=zero, guard=True, passthrough=False)


def _guarded_passthrough(plan, dout, q, k, v, out, lse_b, lse_c):
    return _two_buffer_backward(plan, dout, q, k, v, out, lse_b, lse_c, zero_dk2=False, guard=True, passthrough=True)


def _prefix_rows_add(plan: PassPlan, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                     lse_bidir: Tensor, lse_causal: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """No zero-fill; the causal pass owns every row, the bidirectional result is added on prefix rows."""
    run_bidir, run_causal = plan.max_prefix > 0, plan.max_causal > 0
    with phase("bwd.alloc"):
        dq = torch.empty_like(q)
        dk1, dv1 = torch.empty_like(k), torch.empty_like(v)
        if run_bidir and run_causal:
            dk2, dv2 = torch.empty_like(k), torch.empty_like(v)
        else:  # one pass alone writes every row of every sequence
            dk2, dv2 = dk1, dv1
    if run_bidir:
        with phase("bwd.bidir_pass"):
            plan.bidir_backward(dout, q, k, v, out, lse_bidir, dq, dk1, dv1)
    if run_causal:
        with phase("bwd.causal_pass"):
            plan.causal_backward(dout, q, k, v, out, lse_causal, dq, dk2, dv2)
    _zero_padding(plan.total, dq, dk2, dv2)
    if run_bidir and run_causal:
        with phase("bwd.accumulate"):
            add_prefix_rows_(dk2, dk1, plan.row_is_prefix, plan.total)
            add_prefix_rows_(dv2, dv1, plan.row_is_prefix, plan.total)
    return dq, dk2, dv2


# --- byte models (hot path: a batch whose passes both run) -----------------------------------

def _padding_bytes(s: LengthsSummary) -> int:
    return 3 * (s.token_budget - s.total_tokens) * s.row_bytes   # dq, dk, dv padding rows


def _two_buffer_bytes(s: LengthsSummary, *, zero_dk2: bool, passthrough: bool) -> ByteCounts:
    kv = s.token_budget * s.row_bytes           # one [T, H, D] buffer
    if s.max_causal == 0 and passthrough:
        return ByteCounts(allocated=3 * kv, zero_filled=2 * kv, added=0,
                          padding_zeroed=(s.token_budget - s.total_tokens) * s.row_bytes)
    return ByteCounts(allocated=5 * kv, zero_filled=(4 if zero_dk2 else 2) * kv, added=2 * 3 * kv,
                      padding_zeroed=_padding_bytes(s))


def _prefix_rows_add_bytes(s: LengthsSummary) -> ByteCounts:
    kv = s.token_budget * s.row_bytes
    both = s.max_prefix > 0 and s.max_causal > 0
    return ByteCounts(allocated=(5 if both else 3) * kv, zero_filled=0,
                      added=(2 * 3 * s.prefix_tokens * s.row_bytes) if both else 0,
                      padding_zeroed=_padding_bytes(s))


def _key_split_bytes(s: LengthsSummary) -> ByteCounts:
    kv = s.token_budget * s.row_bytes
    both = s.max_prefix > 0 and s.max_causal > 0
    causal_tokens = s.total_tokens - s.prefix_tokens
    return ByteCounts(allocated=(4 if both else 3) * kv, zero_filled=0,
                      added=(3 * causal_tokens * s.row_bytes) if both else 0,
                      padding_zeroed=_padding_bytes(s))


def _auto_bytes(s: LengthsSummary) -> ByteCounts:
    """Lengths alone do not say which candidate runs: the one with less traffic."""
    counts = (_prefix_rows_add_bytes(s), _key_split_bytes(s))
    return min(counts, key=lambda c: c.zero_filled + c.added + c.padding_zeroed)


# --- key split (key_split.py) and the per-batch pick between the two splits (auto.py) --------

def _key_split_fwd(plan: PassPlan, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if plan.is_causal:   # pass A would need top-left causal alignment: run the query split
        return query_split_forward(plan, q, k, v, skip_empty_prefix=True, skip_empty_causal=True)
    return key_split_forward(plan, q, k, v)


def _key_split_bwd(plan, dout, q, k, v, out, lse_b, lse_c):
    if plan.is_causal:
        return _prefix_rows_add(plan, dout, q, k, v, out, lse_b, lse_c)
    return key_split_backward(plan, dout, q, k, v, out, lse_b, lse_c)


def _auto_pick(plan: PassPlan, q: Tensor, *, forward: bool) -> "Variant":
    """The candidate auto's cost model predicts fastest (the backward repeats the forward's pick)."""
    pairs = auto.batch_pairs(plan)
    bwd_bytes = {}
    if pairs is not None:
        summary = LengthsSummary(token_budget=q.shape[0], total_tokens=plan.total,
                                 prefix_tokens=pairs.prefix_tokens, max_prefix=plan.max_prefix,
                                 max_causal=plan.max_causal, heads=q.shape[1], head_dim=q.shape[2],
                                 element_bytes=q.element_size())
        for name in auto.CANDIDATES:
            c = VARIANTS[name].byte_model(summary)
            bwd_bytes[name] = c.zero_filled + c.added + c.padding_zeroed
    return VARIANTS[auto.choose(plan, q, bwd_bytes, forward=forward).variant]


def auto_choice_for(q: Tensor, meta: "BatchMetadata", backend: str = "auto") -> auto.AutoChoice:
    """What `auto` runs on this batch (the same pick the op makes; may measure the rates once)."""
    from prefixlm_attn.backends import resolve_backend_name
    plan = PassPlan.from_op_args(resolve_backend_name(backend), *meta.op_args(), False, q.shape[-1] ** -0.5,
                                 pair_counts=meta.pair_counts)
    _auto_pick(plan, q, forward=True)
    return auto.last_choice()


def _auto_fwd(plan: PassPlan, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    spec = _auto_pick(plan, q, forward=True)
    if spec.forward is not None:
        return spec.forward(plan, q, k, v)
    return query_split_forward(plan, q, k, v, skip_empty_prefix=spec.skip_empty_prefix,
                               skip_empty_causal=spec.skip_empty_causal)


def _auto_bwd(plan, dout, q, k, v, out, lse_b, lse_c):
    return _auto_pick(plan, q, forward=False).backward(plan, dout, q, k, v, out, lse_b, lse_c)


_TWO_BUFFER_ALLOC = "dq, dK1/dV1, dK2/dV2 with empty_like"
_TWO_BUFFER_ADD = "dK1 += dK2 and dV1 += dV2 over all T rows (3 x K/V bytes each)"

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant(
        name="unguarded",
        description="Upstream before PR #9: both passes always run; dK2/dV2 by empty_like.",
        allocates=_TWO_BUFFER_ALLOC, zero_fills="dK1/dV1 (bidirectional pass leaves response rows unwritten)",
        adds=_TWO_BUFFER_ADD, survives="batches where both passes have queries",
        fails_on="no sequence with causal tokens (FA3 bwd max_seqlen_q=0: CUTLASS Error Internal); "
                 "no sequence with prefix tokens (same, in the bidirectional pass)",
        recommended=False, skip_empty_causal=False, skip_empty_prefix=False,
        backward=_unguarded, byte_model=lambda s: _two_buffer_bytes(s, zero_dk2=False, passthrough=False)),
    Variant(
        name="zeros_always",
        description="PR #9 (reverted): dK2/dV2 by zeros_like on every backward; causal pass skipped when empty.",
        allocates=_TWO_BUFFER_ALLOC, zero_fills="dK1/dV1 and dK2/dV2 on every backward (+2 K/V-sized memsets)",
        adds=_TWO_BUFFER_ADD, survives="no causal tokens anywhere; mixed zero-causal batches",
        fails_on="no sequence with prefix tokens (bidirectional bwd max_seqlen_q=0)",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=False,
        backward=_zeros_always, byte_model=lambda s: _two_buffer_bytes(s, zero_dk2=True, passthrough=False)),
    Variant(
        name="guarded_zero_fill",
        description="PR #13, first commit: empty_like when the causal pass runs; zeros_like and skip otherwise.",
        allocates=_TWO_BUFFER_ALLOC, zero_fills="dK1/dV1; dK2/dV2 only when no sequence has causal tokens",
        adds=_TWO_BUFFER_ADD, survives="no causal tokens anywhere; mixed zero-causal batches",
        fails_on="no sequence with prefix tokens (bidirectional bwd max_seqlen_q=0)",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=False,
        backward=_guarded_zero_fill,
        byte_model=lambda s: _two_buffer_bytes(s, zero_dk2=s.max_causal == 0, passthrough=False)),
    Variant(
        name="guarded_passthrough",
        description="PR #13 as merged: empty_like when the causal pass runs; otherwise skip it and return "
                    "the bidirectional dK/dV directly.",
        allocates=_TWO_BUFFER_ALLOC + " (dK2/dV2 not allocated when skipped)",
        zero_fills="dK1/dV1", adds=_TWO_BUFFER_ADD + "; nothing when skipped",
        survives="no causal tokens anywhere; mixed zero-causal batches",
        fails_on="no sequence with prefix tokens (bidirectional bwd max_seqlen_q=0)",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=False,
        backward=_guarded_passthrough, byte_model=lambda s: _two_buffer_bytes(s, zero_dk2=False, passthrough=True)),
    Variant(
        name="prefix_rows_add",
        description="prefixbench's: no zero-fill at all. The causal pass writes every dK/dV row of every "
                    "sequence, so it owns the result buffer; the bidirectional dK/dV is added on prefix rows "
                    "only (a row-masked Triton kernel on CUDA). Either pass is skipped when it has no queries.",
        allocates="dq, dK1/dV1, dK2/dV2 with empty_like (one pair when a pass is skipped)",
        zero_fills="nothing (padding rows only)",
        adds="dK2 += dK1 and dV2 += dV1 on prefix rows only (3 x prefix bytes each)",
        survives="every batch with at least one token: no causal tokens, no prefix tokens, mixed, "
                 "empty sequences, one-token responses, prefixes that fill the context",
        fails_on="nothing known",
        recommended=True, skip_empty_causal=True, skip_empty_prefix=True,
        backward=_prefix_rows_add, byte_model=_prefix_rows_add_bytes),
    Variant(
        name="fa4_single_pass_sparse",
        description="One FA4 launch per direction over the packed batch as ONE sequence: a PrefixLM x document "
                    "mask_mod (same document, and key in the prefix or not after the query) plus block "
                    "sparsity built on the GPU from the batch's lengths (phases fwd.block_mask / "
                    "bwd.block_mask, part of the cost): wholly visible 128 x 128 tiles run unmasked, wholly "
                    "invisible ones are skipped. Unavailable, never replaced, on backends without FA4's "
                    "mask_mod (fa3).",
        allocates="dq, dK/dV with empty_like (one set); per-token tables and tile lists (int32, small)",
        zero_fills="nothing (padding rows only)", adds="nothing",
        survives="every batch: no pass can be empty (one sequence of the batch's tokens)",
        fails_on="nothing known; needs the fa4 backend (or the reference), head dim <= 128",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=True,
        backward=single_pass.backward_body("fa4_single_pass_sparse"),
        byte_model=single_pass.byte_model("fa4_single_pass_sparse"),
        forward=single_pass.forward_body("fa4_single_pass_sparse")),
    Variant(
        name="fa4_single_pass_masked",
        description="One FA4 varlen launch per direction over the batch's sequences with a per-sequence "
                    "PrefixLM mask_mod and no block sparsity: every tile up to each sequence's length runs "
                    "with the mask (beside fa4_single_pass_sparse it shows what tile skipping is worth).",
        allocates="dq, dK/dV with empty_like (one set)", zero_fills="nothing (padding rows only)",
        adds="nothing", survives="every batch: no pass can be empty (max_seqlen is the longest sequence)",
        fails_on="nothing known; needs the fa4 backend (or the reference)",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=True,
        backward=single_pass.backward_body("fa4_single_pass_masked"),
        byte_model=single_pass.byte_model("fa4_single_pass_masked"),
        forward=single_pass.forward_body("fa4_single_pass_masked")),
    Variant(
        name="key_split",
        description="The same pairs split by keys: pass A = every query against its prefix keys "
                    "(non-causal), pass B = response queries against response keys (causal). The forward "
                    "merges the two partial outputs on response rows by log-sum-exp (one fused kernel); "
                    "the backward runs B then A with the merged out and lse into one dK/dV buffer "
                    "(disjoint rows) and adds dQ on response rows only. With is_causal it runs as "
                    "prefix_rows_add.",
        allocates="dq, dQ_B, dK/dV with empty_like (no dQ_B when a pass is skipped); forward: a second "
                  "out buffer",
        zero_fills="nothing (padding rows only)",
        adds="dQ += dQ_B on response rows only (3 x response bytes); forward merge: 3 x response bytes",
        survives="every batch with at least one token: no causal tokens, no prefix tokens, mixed, "
                 "empty sequences, one-token responses, prefixes that fill the context",
        fails_on="nothing known",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=True,
        backward=_key_split_bwd, byte_model=_key_split_bytes, forward=_key_split_fwd),
    Variant(
        name="auto",
        description="Per batch, prefix_rows_add or key_split, whichever a cost model predicts faster: "
                    "tile pairs of each pass at per-pass rates measured once per device (a fixed "
                    "nominal model without FA3 on CUDA), plus each one's memory traffic. "
                    "prefixlm_attn.auto.last_choice() tells what ran and both predictions.",
        allocates="as the variant it picks", zero_fills="nothing (padding rows only)",
        adds="as the variant it picks",
        survives="every batch with at least one token (as both candidates)",
        fails_on="nothing known",
        recommended=False, skip_empty_causal=True, skip_empty_prefix=True,
        backward=_auto_bwd, byte_model=_auto_bytes, forward=_auto_fwd),
)}

DEFAULT_VARIANT = "prefix_rows_add"


def variant_availability(name: str, backend: str, head_dim: Optional[int] = None) -> Optional[Unavailable]:
    """None when `backend` runs variant `name` (two-pass variants run on every backend), else why not."""
    from prefixlm_attn.backends import get_backend
    get_variant(name)
    if name not in single_pass.FORMS:
        return None
    return single_pass.availability(name, get_backend(backend), head_dim)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}") from None
