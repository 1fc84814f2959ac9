"""The varlen kernel contract both backends implement.

Mirrors `torch.ops.flash_attn_3.fwd/bwd` as the op uses them: caller-provided `out`/`dq`/`dk`/`dv`,
`cu_seqlens_q/k`, `seqused_q/k`, `max_seqlen_q/k`, causal alignment bottom-right.
"""
from __future__ import annotations

from typing import Optional, Protocol

import torch
from torch import Tensor

CUTLASS_BWD_ERROR = "CUTLASS error (flash_bwd_launch_template.h:75): Error Internal"


class KernelCrash(RuntimeError):
    """A kernel failure that leaves the device context unusable (FA3's CUTLASS error)."""


class KernelBackend(Protocol):
    name: str

    def available(self) -> bool: ...

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *,
                cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                softmax_scale: float) -> Tensor:
        """Write `out` rows of valid queries; return softmax_lse [heads, rows] float32."""
        ...

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *,
                 cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                 seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                 max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                 softmax_scale: float) -> None:
        """Write dq rows of valid queries and dk/dv rows of each sequence's key span."""
        ...


def default_softmax_scale(head_dim: int) -> float:
    return head_dim ** -0.5


def is_device_dead_error(exc: BaseException) -> bool:
    """True when an exception means the CUDA context (or its reference mirror) is unusable."""
    if isinstance(exc, KernelCrash):
        return True
    text = str(exc)
    return any(s in text for s in ("CUTLASS error", "CUDA error", "illegal memory access",
                                   "unspecified launch failure", "device-side assert"))


def as_cpu_ints(t: Optional[Tensor], n: int) -> Optional[list[int]]:
    return None if t is None else [int(x) for x in t[:n].tolist()]


__all__ = ["KernelBackend", "KernelCrash", "CUTLASS_BWD_ERROR", "default_softmax_scale",
           "is_device_dead_error", "as_cpu_ints", "torch"]
