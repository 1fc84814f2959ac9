"""Peer implementations: other ways to compute (or bound) the same PrefixLM attention.

The sweep measures them exactly as it measures the op's variants (`prefixbench sweep --peer NAME`).
Each `prepare` checks its result against a dense reference first and puts the verdict in
`Prepared.notes["check"]`, and the pairs it really computes in `Prepared.notes["attended_pairs"]`
(the bounds do different work from PrefixLM). See docs/PEERS.md.
"""
from __future__ import annotations

from typing import Callable

from bench.implementations import Implementation, Prepared
from bench.workloads import Workload
from bench.peers.base import BIDIR, CAUSAL, PREFIXLM, PeerUnsupported
from bench.peers.bounds import prepare_bidir_bound, prepare_causal_bound
from bench.peers.check import check_peer, checked
from bench.peers.flex import prepare_flex
from bench.peers.sdpa import prepare_sdpa


def _peer(name: str, description: str, prepare: Callable[[Workload, str], Prepared],
          reference: str = PREFIXLM) -> Implementation:
    return Implementation(name, "peer", description, checked(name, prepare, reference))


PEERS: dict[str, Implementation] = {p.name: p for p in (
    _peer("flex_attention", "torch FlexAttention with a PrefixLM x document block mask (compiled on CUDA)",
          prepare_flex),
    _peer("sdpa_dense", "torch SDPA with a dense block-diagonal PrefixLM [T, T] boolean mask", prepare_sdpa),
    _peer("fa3_causal_bound", "one FA3 varlen causal pass over whole sequences (less work than PrefixLM)",
          prepare_causal_bound, CAUSAL),
    _peer("fa3_bidir_bound", "one FA3 varlen bidirectional pass over whole sequences (more work than PrefixLM)",
          prepare_bidir_bound, BIDIR),
)}

__all__ = ["PEERS", "PeerUnsupported", "check_peer"]
