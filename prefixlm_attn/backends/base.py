"""The varlen kernel contract every backend implements, torch-free so bench code can import it anywhere.

Mirrors `torch.ops.flash_attn_3.fwd/bwd` as the op uses them: caller-provided `out`/`dq`/`dk`/`dv`,
`cu_seqlens_q/k`, `seqused_q/k`, `max_seqlen_q/k`, causal alignment bottom-right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol

if TYPE_CHECKING:
    from torch import Tensor

CUTLASS_BWD_ERROR = "CUTLASS error (flash_bwd_launch_template.h:75): Error Internal"
DIRECTIONS = ("forward", "backward")


@dataclass(frozen=True)
class Unavailable:
    """Why something (a backend, a direction, a variant, a peer) cannot run here: one line for the user."""
    reason: str


class KernelCrash(RuntimeError):
    """A kernel failure that leaves the device context unusable (FA3's CUTLASS error)."""


class KernelBackend(Protocol):
    name: str
    kind: str                                    # "kernel" | "reference"
    single_pass_variants: tuple[str, ...]        # single-pass variants this backend has a kernel for

    def availability(self, direction: str = "backward") -> Optional[Unavailable]:
        """None when `direction` ("forward" or "backward") runs here, else why not."""
        ...

    def available(self) -> bool:
        """Both directions run here."""
        ...

    def version_info(self) -> dict:
        """Package, version and build flags (goes into env.json and every record)."""
        ...

    def check_supported(self, *, head_dim: int, dtype: str) -> Optional[Unavailable]:
        """None when the installed kernels cover (head_dim, dtype), else one line saying what is missing."""
        ...

    def forward(self, q: "Tensor", k: "Tensor", v: "Tensor", out: "Tensor", *,
                cu_seqlens_q: "Tensor", cu_seqlens_k: "Tensor",
                seqused_q: Optional["Tensor"], seqused_k: Optional["Tensor"],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                softmax_scale: float) -> "Tensor":
        """Write `out` rows of valid queries; return softmax_lse [heads, rows] float32."""
        ...

    def backward(self, dout: "Tensor", q: "Tensor", k: "Tensor", v: "Tensor", out: "Tensor",
                 softmax_lse: "Tensor", dq: "Tensor", dk: "Tensor", dv: "Tensor", *,
                 cu_seqlens_q: "Tensor", cu_seqlens_k: "Tensor",
                 seqused_q: Optional["Tensor"], seqused_k: Optional["Tensor"],
                 max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                 softmax_scale: float) -> None:
        """Write dq rows of valid queries and dk/dv rows of each sequence's key span."""
        ...


def both_directions(backend: KernelBackend) -> bool:
    """`available()` as every backend defines it: forward and backward both run."""
    return all(backend.availability(d) is None for d in DIRECTIONS)


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: choose forward or backward")


def default_softmax_scale(head_dim: int) -> float:
    return head_dim ** -0.5


def is_device_dead_error(exc: BaseException) -> bool:
    """True when an exception means the CUDA context (or its reference mirror) is unusable."""
    if isinstance(exc, KernelCrash):
        return True
    text = str(exc)
    return any(s in text for s in ("CUTLASS error", "CUDA error", "illegal memory access",
                                   "unspecified launch failure", "device-side assert"))


def as_cpu_ints(t: Optional["Tensor"], n: int) -> Optional[list[int]]:
    return None if t is None else [int(x) for x in t[:n].tolist()]


__all__ = ["DIRECTIONS", "KernelBackend", "KernelCrash", "Unavailable", "CUTLASS_BWD_ERROR",
           "both_directions", "check_direction", "default_softmax_scale", "is_device_dead_error", "as_cpu_ints"]
