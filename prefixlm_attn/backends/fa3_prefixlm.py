"""FlashAttention-3 built with kernels/fa3_prefixlm (the `prefix_lens` patch): PrefixLM in one launch.

The patched `torch.ops.flash_attn_3.fwd/bwd` take one more optional argument, `prefix_lens` (int32 per
sequence). With an unpatched FA3 the schema has no such argument and this kernel reports itself
unavailable; nothing falls back to the two-pass path.
"""
from __future__ import annotations

import importlib
from typing import Optional

import torch
from torch import Tensor

PATCH_HINT = "build it with kernels/fa3_prefixlm/build.sh and put that build on PYTHONPATH"


def schema_has_argument(op_packet, name: str) -> bool:
    """True when an op's schema (e.g. torch.ops.flash_attn_3.fwd) names the argument `name`."""
    return any(arg.name == name for arg in op_packet.default._schema.arguments)


def schema_has_prefix_lens(op_packet) -> bool:
    """True when an op's schema names a `prefix_lens` argument (the patched build)."""
    return schema_has_argument(op_packet, "prefix_lens")


class FA3PrefixLMKernel:
    def __init__(self) -> None:
        self._ops = None
        self._bwd_has_wide_tiles = False

    def unavailable_reason(self) -> Optional[str]:
        if self._ops is not None:       # checked once: the op is asked on every call, on the host's hot path
            return None
        if not torch.cuda.is_available():
            return "no CUDA device"
        try:
            importlib.import_module("flash_attn_3._C")
        except Exception as exc:  # noqa: BLE001 - the reason is reported, not hidden
            return f"flash_attn_3 does not load ({str(exc)[:160]}); {PATCH_HINT}"
        ops = torch.ops.flash_attn_3
        if not (schema_has_prefix_lens(ops.fwd) and schema_has_prefix_lens(ops.bwd)):
            return f"the loaded flash_attn_3 is unpatched (its fwd/bwd take no prefix_lens); {PATCH_HINT}"
        self._ops = ops
        self._bwd_has_wide_tiles = schema_has_argument(ops.bwd, "prefix_wide_tiles")
        return None

    def _load(self):
        if self._ops is None:
            reason = self.unavailable_reason()
            if reason is not None:
                from prefixlm_attn.backends.single_pass import SinglePassUnavailable
                raise SinglePassUnavailable(reason)
        return self._ops

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens: Tensor,
                prefix_lens: Optional[Tensor], max_seqlen: int, softmax_scale: float) -> Tensor:
        _, lse, *_ = self._load().fwd(
            q=q, k=k, v=v, out=out, cu_seqlens_q=cu_seqlens, cu_seqlens_k=cu_seqlens, max_seqlen_q=max_seqlen,
            max_seqlen_k=max_seqlen, softmax_scale=softmax_scale, window_size_left=-1,
            window_size_right=-1, num_splits=1, **_mask(prefix_lens))
        return lse

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens: Tensor, prefix_lens: Optional[Tensor],
                 max_seqlen: int, softmax_scale: float, wide_tiles: bool = False) -> None:
        ops = self._load()
        ops.bwd(
            dout=dout, q=q, k=k, v=v, out=out, softmax_lse=softmax_lse, dq=dq, dk=dk, dv=dv, cu_seqlens_q=cu_seqlens,
            cu_seqlens_k=cu_seqlens, max_seqlen_q=max_seqlen, max_seqlen_k=max_seqlen,
            softmax_scale=softmax_scale, window_size_left=-1, window_size_right=-1,
            deterministic=False, **_mask(prefix_lens), **self._tiles(prefix_lens, wide_tiles))

    def _tiles(self, prefix_lens: Optional[Tensor], wide_tiles: bool) -> dict:
        """`prefix_wide_tiles` only where the build takes it and a prefix mask runs (builds without it
        keep their narrow causal tiles)."""
        if prefix_lens is None or not wide_tiles or not self._bwd_has_wide_tiles:
            return {}
        return {"prefix_wide_tiles": True}


def _mask(prefix_lens: Optional[Tensor]) -> dict:
    """The PrefixLM mask (causal kernels + `prefix_lens`), or none at all: FA3's bidirectional kernels,
    which use the wider non-causal tiles, when every token of the batch is a prefix token."""
    if prefix_lens is None:
        return {"is_causal": False}
    return {"is_causal": True, "prefix_lens": prefix_lens}


FA3_PREFIXLM = FA3PrefixLMKernel()
