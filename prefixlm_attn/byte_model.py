"""The byte model's two value types: what a batch looks like to it, and the traffic it predicts.

Their own module so the variants and the single-pass kernels can share them without importing each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class ByteCounts:
    """Memory traffic of one backward outside the FA3 kernels, in bytes."""
    allocated: int        # fresh buffers (dq, dk*, dv*)
    zero_filled: int      # bytes written by zero-fills of whole buffers
    added: int            # bytes read + written by the dK/dV accumulation
    padding_zeroed: int   # bytes written zeroing padding rows

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class LengthsSummary:
    """What a byte model needs to know about a batch."""
    token_budget: int
    total_tokens: int
    prefix_tokens: int
    max_prefix: int
    max_causal: int
    heads: int
    head_dim: int
    element_bytes: int

    @property
    def row_bytes(self) -> int:
        return self.heads * self.head_dim * self.element_bytes

    @classmethod
    def of(cls, prefix: list[int] | tuple[int, ...], causal: list[int] | tuple[int, ...], token_budget: int,
           heads: int, head_dim: int, dtype: torch.dtype) -> "LengthsSummary":
        return cls(token_budget=token_budget, total_tokens=sum(prefix) + sum(causal), prefix_tokens=sum(prefix),
                   max_prefix=max(prefix), max_causal=max(causal), heads=heads, head_dim=head_dim,
                   element_bytes=torch.empty((), dtype=dtype).element_size())


__all__ = ["ByteCounts", "LengthsSummary"]
