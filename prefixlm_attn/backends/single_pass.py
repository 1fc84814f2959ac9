"""The single-pass PrefixLM kernel contract, its pure-PyTorch reference, and the lookup by backend.

One varlen launch per direction over whole sequences (`cu_seqlens` for queries and keys): query i of
a sequence sees key j iff `j < prefix_lens[b]` or `j <= i`. `prefix_lens=None` means every key of the
sequence is visible (a batch without response tokens), which lets a backend run its unmasked kernel.
Rows written: `out`/`dq`/`dk`/`dv` rows of every token inside `cu_seqlens`; rows past the last
sequence are untouched.
"""
from __future__ import annotations

from typing import Optional, Protocol

import torch
from torch import Tensor

from prefixlm_attn.masks import sequence_mask


class SinglePassUnavailable(RuntimeError):
    """The backend has no single-pass PrefixLM kernel (e.g. an unpatched FA3); the message says why."""


class SinglePassKernel(Protocol):
    def unavailable_reason(self) -> Optional[str]: ...

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens: Tensor,
                prefix_lens: Optional[Tensor], max_seqlen: int, softmax_scale: float) -> Tensor:
        """Write `out` rows of every sequence; return softmax_lse [heads, rows] float32."""
        ...

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens: Tensor, prefix_lens: Optional[Tensor],
                 max_seqlen: int, softmax_scale: float, wide_tiles: bool = False) -> None:
        """Write dq/dk/dv rows of every sequence; `wide_tiles` is a speed hint (a tile shape), never a
        change of result; kernels without a choice ignore it."""
        ...


def prefixlm_mask(length: int, prefix: int, device: torch.device) -> Tensor:
    """[length, length] bool: key j visible to query i iff j < prefix or j <= i (masks.sequence_mask)."""
    return sequence_mask(length, prefix, device)


def _sequences(cu_seqlens: Tensor, prefix_lens: Optional[Tensor]) -> list[tuple[int, int, int]]:
    cu = [int(x) for x in cu_seqlens.tolist()]
    if prefix_lens is None:     # every key visible: the whole sequence is its prefix
        return [(cu[b], cu[b + 1] - cu[b], cu[b + 1] - cu[b]) for b in range(len(cu) - 1)]
    pre = [int(x) for x in prefix_lens[: len(cu) - 1].tolist()]
    return [(cu[b], cu[b + 1] - cu[b], pre[b]) for b in range(len(cu) - 1)]


class ReferenceSinglePass:
    """Float32 PyTorch with the same per-sequence mask as the patched kernel (any device)."""

    def unavailable_reason(self) -> Optional[str]:
        return None

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens: Tensor,
                prefix_lens: Optional[Tensor], max_seqlen: int, softmax_scale: float) -> Tensor:
        lse = torch.full((q.shape[1], q.shape[0]), float("-inf"), dtype=torch.float32, device=q.device)
        for start, length, prefix in _sequences(cu_seqlens, prefix_lens):
            if length <= 0:
                continue
            sl = slice(start, start + length)
            s = torch.einsum("qhd,khd->hqk", q[sl].float(), k[sl].float()) * softmax_scale
            s = s.masked_fill(~prefixlm_mask(length, prefix, q.device), float("-inf"))
            row_lse = torch.logsumexp(s, dim=-1)
            p = torch.exp(s - row_lse[..., None])
            out[sl] = torch.einsum("hqk,khd->qhd", p, v[sl].float()).to(out.dtype)
            lse[:, sl] = row_lse
        return lse

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens: Tensor, prefix_lens: Optional[Tensor],
                 max_seqlen: int, softmax_scale: float, wide_tiles: bool = False) -> None:
        for start, length, prefix in _sequences(cu_seqlens, prefix_lens):
            if length <= 0:
                continue
            sl = slice(start, start + length)
            qf, kf, vf = q[sl].float(), k[sl].float(), v[sl].float()
            do, o = dout[sl].float(), out[sl].float()
            s = torch.einsum("qhd,khd->hqk", qf, kf) * softmax_scale
            s = s.masked_fill(~prefixlm_mask(length, prefix, q.device), float("-inf"))
            p = torch.exp(s - softmax_lse[:, sl, None])
            dp = torch.einsum("qhd,khd->hqk", do, vf)
            delta = (do * o).sum(-1).transpose(0, 1)[..., None]
            ds = p * (dp - delta)
            dq[sl] = (torch.einsum("hqk,khd->qhd", ds, kf) * softmax_scale).to(dq.dtype)
            dk[sl] = (torch.einsum("hqk,qhd->khd", ds, qf) * softmax_scale).to(dk.dtype)
            dv[sl] = torch.einsum("hqk,qhd->khd", p, do).to(dv.dtype)


_REFERENCE = ReferenceSinglePass()


def single_pass_kernel(backend: str) -> SinglePassKernel:
    """The single-pass kernel of a resolved backend name ('fa3' -> the patched FA3, never a fallback)."""
    if backend == "fa3":
        from prefixlm_attn.backends.fa3_prefixlm import FA3_PREFIXLM
        return FA3_PREFIXLM
    if backend == "reference":
        return _REFERENCE
    raise ValueError(f"no single-pass PrefixLM kernel for backend {backend!r}")


def require_single_pass(backend: str) -> SinglePassKernel:
    """The kernel, or `SinglePassUnavailable` with the reason it cannot run."""
    kernel = single_pass_kernel(backend)
    reason = kernel.unavailable_reason()
    if reason is not None:
        raise SinglePassUnavailable(f"single_pass on backend {backend!r} is unavailable: {reason}")
    return kernel
