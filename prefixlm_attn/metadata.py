"""Batch metadata in the calling convention training uses.

Per-sequence tensors are padded to a fixed capacity and the scalars are 0-d CPU tensors, so a
`torch.compile`d model sees the same shapes for every batch and reads the scalars with `.item()`
inside the custom op instead of specialising on them.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from prefixlm_attn.pair_counts import prefixlm_pair_counts


class InvalidLengths(ValueError):
    """A length list the op cannot take; the message names the offending value."""


@dataclass(frozen=True)
class BatchMetadata:
    prefix_lens: torch.Tensor      # int32 [S+1] on the tensor device, zero-padded
    causal_lens: torch.Tensor      # int32 [S+1]
    cu_seqlens: torch.Tensor       # int32 [S+1], padded with the total
    row_is_prefix: torch.Tensor    # bool [T]: token row lies in a prefix
    total_tokens: torch.Tensor     # int64 0-d CPU tensors from here on
    num_seqs: torch.Tensor
    max_prefix: torch.Tensor
    max_causal: torch.Tensor
    max_total: torch.Tensor
    token_budget: int
    prefix_list: tuple[int, ...]
    causal_list: tuple[int, ...]
    pair_counts: Optional[torch.Tensor] = None   # int64 CPU: per-pass pairs (pair_counts.BatchPairs)

    def op_args(self) -> tuple[torch.Tensor, ...]:
        """The metadata tensors in the op's argument order."""
        return (self.prefix_lens, self.causal_lens, self.cu_seqlens, self.row_is_prefix,
                self.total_tokens, self.num_seqs, self.max_prefix, self.max_causal, self.max_total)

    @property
    def total(self) -> int:
        return int(sum(self.prefix_list) + sum(self.causal_list))


def _as_int_list(name: str, values: Sequence[object]) -> list[int]:
    out: list[int] = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
                value = int(value)  # 3.0 from a CSV is fine; 2.5 is not
            else:
                raise InvalidLengths(f"{name}[{i}] = {value!r} is not an integer")
        if int(value) < 0:
            raise InvalidLengths(f"{name}[{i}] = {int(value)} is negative")
        out.append(int(value))
    return out


def validate_lengths(prefix_lens: Sequence[object], causal_lens: Sequence[object],
                     token_budget: int | None = None, max_seqs: int | None = None) -> tuple[list[int], list[int]]:
    """Check a batch's length lists; return them as ints or raise `InvalidLengths`."""
    if isinstance(prefix_lens, torch.Tensor):
        prefix_lens = prefix_lens.tolist()
    if isinstance(causal_lens, torch.Tensor):
        causal_lens = causal_lens.tolist()
    prefix = _as_int_list("prefix_lens", list(prefix_lens))
    causal = _as_int_list("causal_lens", list(causal_lens))
    if len(prefix) != len(causal):
        raise InvalidLengths(f"prefix_lens has {len(prefix)} entries but causal_lens has {len(causal)}")
    if not prefix:
        raise InvalidLengths("empty batch: no sequences")
    total = sum(prefix) + sum(causal)
    if total == 0:
        raise InvalidLengths("empty batch: every sequence has zero tokens")
    if token_budget is not None:
        if token_budget < 1:
            raise InvalidLengths(f"token budget {token_budget} must be positive")
        if total > token_budget:
            raise InvalidLengths(f"total tokens {total} exceed the token budget {token_budget}")
    if max_seqs is not None and len(prefix) > max_seqs:
        raise InvalidLengths(f"{len(prefix)} sequences exceed the sequence capacity {max_seqs}")
    return prefix, causal


def build_batch_metadata(prefix_lens: Sequence[object], causal_lens: Sequence[object], token_budget: int,
                         device: torch.device | str = "cpu", max_seqs: int | None = None) -> BatchMetadata:
    """Padded metadata tensors plus CPU scalars for one packed batch of `token_budget` rows."""
    capacity = token_budget if max_seqs is None else max_seqs
    prefix, causal = validate_lengths(prefix_lens, causal_lens, token_budget, capacity)
    n = len(prefix)
    totals = [p + c for p, c in zip(prefix, causal)]
    cu = [0]
    for t in totals:
        cu.append(cu[-1] + t)
    pad = capacity + 1
    prefix_t = torch.zeros(pad, dtype=torch.int32)
    causal_t = torch.zeros(pad, dtype=torch.int32)
    cu_t = torch.full((pad,), cu[-1], dtype=torch.int32)
    prefix_t[:n] = torch.tensor(prefix, dtype=torch.int32)
    causal_t[:n] = torch.tensor(causal, dtype=torch.int32)
    cu_t[: n + 1] = torch.tensor(cu, dtype=torch.int32)
    row_is_prefix = torch.zeros(token_budget, dtype=torch.bool)
    for start, p in zip(cu, prefix):
        row_is_prefix[start:start + p] = True

    def scalar(x: int) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.int64)

    return BatchMetadata(
        prefix_lens=prefix_t.to(device), causal_lens=causal_t.to(device), cu_seqlens=cu_t.to(device),
        row_is_prefix=row_is_prefix.to(device),
        total_tokens=scalar(cu[-1]), num_seqs=scalar(n), max_prefix=scalar(max(prefix)),
        max_causal=scalar(max(causal)), max_total=scalar(max(totals)),
        token_budget=token_budget, prefix_list=tuple(prefix), causal_list=tuple(causal),
        pair_counts=prefixlm_pair_counts(prefix, causal).as_tensor(),
    )
