"""Shared pieces of the peers: the refusal exception, which dense mask each peer computes, row tables."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor

from bench.harness.workloads import Workload
from prefixlm_attn.backends.base import Unavailable


class PeerUnsupported(RuntimeError):
    """A peer cannot run this workload here (e.g. a dense [T, T] mask too large); the message says why.

    The sweep records it as status "skipped" with this message as the reason.
    """

    @property
    def why(self) -> Unavailable:
        """The refusal as the type backends and the timing plan share."""
        return Unavailable(str(self))


class PeerCheckFailed(RuntimeError):
    """A peer's output or gradients disagree with its dense reference: it is not timed."""


# What each peer computes, as a dense reference: "prefixlm" (the op's mask), "causal" (per sequence
# j <= i) or "bidir" (per sequence, every pair).
PREFIXLM, CAUSAL, BIDIR = "prefixlm", "causal", "bidir"


def row_tables(w: Workload) -> tuple[Tensor, Tensor, Tensor]:
    """Per token row: sequence index (-1 for padding), position in its sequence, its sequence's prefix."""
    doc = torch.full((w.shape.tokens,), -1, dtype=torch.int32)
    pos = torch.zeros(w.shape.tokens, dtype=torch.int32)
    plen = torch.zeros(w.shape.tokens, dtype=torch.int32)
    start = 0
    for s, (p, c) in enumerate(zip(w.batch.prefix_lens, w.batch.causal_lens)):
        doc[start:start + p + c] = s
        pos[start:start + p + c] = torch.arange(p + c, dtype=torch.int32)
        plen[start:start + p + c] = p
        start += p + c
    return tuple(t.to(w.device) for t in (doc, pos, plen))


def prefixlm_mask_mod(doc: Tensor, pos: Tensor, plen: Tensor) -> Callable:
    """The PrefixLM x document mask as a FlexAttention `mask_mod` over `row_tables`; the dense SDPA
    mask evaluates the same predicate on the full index grid."""
    def mask_mod(b, h, q_idx, kv_idx):
        same = (doc[q_idx] == doc[kv_idx]) & (doc[q_idx] >= 0)
        return same & ((pos[kv_idx] < plen[kv_idx]) | (kv_idx <= q_idx))
    return mask_mod


def timed_ms(fn: Callable, device: torch.device) -> tuple[object, float]:
    """(fn(), wall milliseconds), synchronised on CUDA: one-off costs such as mask construction."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, (time.perf_counter() - t0) * 1e3
