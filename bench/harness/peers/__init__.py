"""Peer implementations: other ways to compute (or bound) the same PrefixLM attention.

The sweep measures them exactly as it measures the op's variants (`prefixbench sweep --peer NAME`).
Each `prepare` checks its result against a dense reference first and puts the verdict in
`Prepared.notes["check"]`, and the pairs it really computes in `Prepared.notes["attended_pairs"]`
(the bounds do different work from PrefixLM). See docs/PEERS.md.
"""
from __future__ import annotations

from typing import Callable

from bench.harness.implementations import Implementation, Prepared
from bench.harness.workloads import Workload
from bench.harness.peers.base import BIDIR, CAUSAL, PREFIXLM, PeerUnsupported
from bench.harness.peers.bounds import prepare_bidir_bound, prepare_causal_bound
from bench.harness.peers.check import check_peer, checked
from bench.harness.peers.flex import prepare_flex
from bench.harness.peers.sdpa import SDPA_MAX_TOKENS, SDPA_MEMORY_FRACTION, prepare_sdpa


def _peer(name: str, description: str, prepare: Callable[[Workload, str], Prepared], needs: str,
          reference: str = PREFIXLM, kernel: str | None = None) -> Implementation:
    return Implementation(name, "peer", description, checked(name, prepare, reference), needs=needs, kernel=kernel)


PEERS: dict[str, Implementation] = {p.name: p for p in (
    _peer("flex_attention", "torch FlexAttention with a PrefixLM x document block mask (compiled on CUDA)",
          prepare_flex, "torch.nn.attention.flex_attention; compiled on CUDA, eager (slow) on CPU"),
    _peer("sdpa_dense", "torch SDPA with a dense block-diagonal PrefixLM [T, T] boolean mask", prepare_sdpa,
          f"memory for a [T, T] mask: at most {SDPA_MAX_TOKENS} tokens and {SDPA_MEMORY_FRACTION:.0%} of free memory"),
    _peer("fa3_causal_bound", "one FA3 varlen causal pass over whole sequences (less work than PrefixLM)",
          prepare_causal_bound, "FA3 on CUDA, or the reference mirroring it on a reference run", CAUSAL, "fa3"),
    _peer("fa3_bidir_bound", "one FA3 varlen bidirectional pass over whole sequences (more work than PrefixLM)",
          prepare_bidir_bound, "FA3 on CUDA, or the reference mirroring it on a reference run", BIDIR, "fa3"),
    _peer("fa4_causal_bound", "one FA4 varlen causal pass over whole sequences (less work than PrefixLM)",
          prepare_causal_bound, "FA4 on CUDA (flash-attn-4), or reference@fa4 on a reference run", CAUSAL, "fa4"),
    _peer("fa4_bidir_bound", "one FA4 varlen bidirectional pass over whole sequences (more work than PrefixLM)",
          prepare_bidir_bound, "FA4 on CUDA (flash-attn-4), or reference@fa4 on a reference run", BIDIR, "fa4"),
)}

__all__ = ["PEERS", "PeerUnsupported", "check_peer"]
