"""How far a result is from its reference, and which rows a kernel left unwritten.

Shared by validation, the peers' correctness check and the contract probes: a relative error with a
per-dtype tolerance, poisoned buffers (NaN or a large finite sentinel) and the rows still holding
poison afterwards, written as [start, stop) ranges.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

import torch

from bench.spec.names import as_ranges, format_ranges  # noqa: F401 - row ranges are plain data

SENTINEL = 12288.0          # exact in bf16/fp16/fp32; real gradients of randn inputs are far smaller
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8, torch.bfloat16: 2e-2, torch.float16: 5e-3}
TENSORS = ("out", "dq", "dk", "dv")


def tolerance(dtype: torch.dtype) -> float:
    """Relative-error tolerance of a dtype (bf16's when the dtype is not listed)."""
    return TOLERANCE.get(dtype, TOLERANCE[torch.bfloat16])


@contextlib.contextmanager
def poisoned_empty_like(value: float) -> Iterator[None]:
    """Within the block, `torch.empty_like` returns floating buffers filled with `value`."""
    original = torch.empty_like

    def poisoned(*args: Any, **kwargs: Any) -> torch.Tensor:
        t = original(*args, **kwargs)
        if t.is_floating_point():
            t.fill_(value)
        return t

    torch.empty_like = poisoned
    try:
        yield
    finally:
        torch.empty_like = original


def poisoned_rows(t: torch.Tensor, value: float) -> list[int]:
    """Rows with any element still holding poison (NaN, or |x| >= half the sentinel)."""
    flat = t.detach().float().flatten(1)
    bad = torch.isnan(flat) if math.isnan(value) else flat.abs() >= value / 2
    return bad.any(1).nonzero().squeeze(1).tolist()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||b||, 1): an all-zero reference (dq of a lone token) is compared absolutely."""
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1.0)).item()


def written_rows(t: torch.Tensor) -> list[list[int]]:
    """Rows where a NaN poison was overwritten (every element of the row finite), as ranges."""
    return as_ranges((~torch.isnan(t.float()).flatten(1).any(1)).nonzero().squeeze(1).tolist())
