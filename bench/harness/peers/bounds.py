"""Bounds for the two-pass op: one varlen pass over whole sequences, causal or bidirectional, on FA3 or FA4.

A causal pass attends fewer pairs than PrefixLM (sum n(n+1)/2), a bidirectional one more (sum n^2),
and both are a single kernel launch per direction, so they bracket what a fused PrefixLM kernel could
cost. They run through the same `KernelBackend` contract as the op, so the reference backend runs
them on the CPU too. Each peer names its kernel (`fa3_*`, `fa4_*`); the sweep gives it the backend that
is or mirrors that kernel (bench.harness.target.backend_for_kernel).
"""
from __future__ import annotations

import torch
from torch import Tensor

from bench.harness.implementations import Prepared
from bench.harness.workloads import Workload
from prefixlm_attn.backends import get_backend
from bench.harness.peers.base import PeerUnsupported
from prefixlm_attn.backends.base import DIRECTIONS, KernelBackend, Unavailable, default_softmax_scale


def causal_pairs(totals: list[int]) -> int:
    return sum(n * (n + 1) // 2 for n in totals)


def bidir_pairs(totals: list[int]) -> int:
    return sum(n * n for n in totals)


def sequence_totals(w: Workload) -> list[int]:
    return [p + c for p, c in zip(w.batch.prefix_lens, w.batch.causal_lens)]


class _SinglePass(torch.autograd.Function):
    """One varlen pass over every sequence; padding rows of out/dq/dk/dv are zero (the op's contract)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, backend: KernelBackend, kwargs: dict, total: int):
        out = torch.empty_like(q)
        lse = backend.forward(q, k, v, out, **kwargs)
        out[total:] = 0
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.backend, ctx.kwargs, ctx.total = backend, kwargs, total
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        ctx.backend.backward(dout.contiguous(), q, k, v, out, lse, dq, dk, dv, **ctx.kwargs)
        for g in (dq, dk, dv):
            g[ctx.total:] = 0
        return dq, dk, dv, None, None, None


def single_pass_kwargs(w: Workload, causal: bool) -> dict:
    """Whole sequences as both queries and keys: cu_seqlens of the batch, max_seqlen = longest total."""
    n = int(w.meta.num_seqs.item())
    cu = w.meta.cu_seqlens[: n + 1]
    longest = int(w.meta.max_total.item())
    return dict(cu_seqlens_q=cu, cu_seqlens_k=cu, seqused_q=None, seqused_k=None, max_seqlen_q=longest,
                max_seqlen_k=longest, causal=causal, softmax_scale=default_softmax_scale(w.q.shape[-1]))


def _prepare(causal: bool):
    def prepare(w: Workload, backend: str) -> Prepared:
        be = get_backend(backend)
        why = next((u for d in DIRECTIONS if (u := be.availability(d)) is not None), None)
        if why is None and be.kind == "kernel" and w.device.type != "cuda":
            why = Unavailable(f"{be.name} is a GPU kernel backend and this run is on {w.device.type}")
        if why is not None:     # its kernel is not here (e.g. FA4 not installed): skipped, with the reason
            raise PeerUnsupported(f"{be.name}: {why.reason}")
        kwargs = single_pass_kwargs(w, causal)
        total = w.meta.total
        pairs = (causal_pairs if causal else bidir_pairs)(sequence_totals(w))
        return Prepared(lambda: _SinglePass.apply(w.q, w.k, w.v, be, kwargs, total), setup_ms=0.0,
                        notes={"attended_pairs": pairs, "backend": be.name})
    return prepare


prepare_causal_bound = _prepare(causal=True)
prepare_bidir_bound = _prepare(causal=False)
