"""Pair arithmetic of a packed PrefixLM batch, in plain integers (the FLOP count's basis)."""
from __future__ import annotations

from typing import Sequence


def attended_pairs(prefix_lens: Sequence[int], causal_lens: Sequence[int]) -> int:
    """(query, key) pairs PrefixLM attends: p^2 for the prefix, sum over responses of p+i+1."""
    return sum(p * p + c * p + c * (c + 1) // 2 for p, c in zip(prefix_lens, causal_lens))
