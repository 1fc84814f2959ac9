"""Shared pieces of the peers: the refusal exception and which dense mask each peer computes."""
from __future__ import annotations


class PeerUnsupported(RuntimeError):
    """A peer cannot run this workload here (e.g. a dense [T, T] mask too large); the message says why.

    The sweep records it as status "error" with this message.
    """


class PeerCheckFailed(RuntimeError):
    """A peer's output or gradients disagree with its dense reference: it is not timed."""


# What each peer computes, as a dense reference: "prefixlm" (the op's mask), "causal" (per sequence
# j <= i) or "bidir" (per sequence, every pair).
PREFIXLM, CAUSAL, BIDIR = "prefixlm", "causal", "bidir"
