"""FlashAttention-3 (Hopper) through `torch.ops.flash_attn_3`, called by keyword (tests/test_fa3_keywords.py holds
the names against the op schema)."""
from __future__ import annotations

import importlib
from typing import Optional

import torch
from torch import Tensor


class FA3Backend:
    name = "fa3"

    def __init__(self) -> None:
        self._ops = None

    def _load(self):
        if self._ops is None:
            importlib.import_module("flash_attn_3._C")  # registers torch.ops.flash_attn_3
            self._ops = torch.ops.flash_attn_3
        return self._ops

    def available(self) -> bool:
        if not torch.cuda.is_available():
            return False
        try:
            self._load()
        except Exception:
            return False
        return True

    def build_info(self) -> dict:
        """What FA3 build is loaded (for the environment record): head dims, dtypes, commit, flags."""
        from prefixlm_attn.backends.fa3_build import fa3_build_info
        info: dict = {"build": fa3_build_info()}
        try:
            cfg = importlib.import_module("flash_attn_config").CONFIG
            info["build_flags"] = {k: v for k, v in cfg.get("build_flags", {}).items() if v is False}
        except Exception as exc:  # noqa: BLE001 - informational only
            info["build_flags_error"] = str(exc)[:200]
        try:
            info["library"] = importlib.import_module("flash_attn_3._C").__file__
        except Exception as exc:  # noqa: BLE001
            info["library_error"] = str(exc)[:200]
        return info

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens_q: Tensor,
                cu_seqlens_k: Tensor, seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool, softmax_scale: float) -> Tensor:
        ops = self._load()
        _, lse, *_ = ops.fwd(
            q=q, k=k, v=v, out=out, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, seqused_q=seqused_q,
            seqused_k=seqused_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, softmax_scale=softmax_scale,
            is_causal=causal, window_size_left=-1, window_size_right=-1, attention_chunk=0, softcap=0.0,
            is_rotary_interleaved=True, num_splits=1, sm_margin=0)
        return lse

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                 seqused_q: Optional[Tensor], seqused_k: Optional[Tensor], max_seqlen_q: int,
                 max_seqlen_k: int, causal: bool, softmax_scale: float) -> None:
        ops = self._load()
        ops.bwd(dout=dout, q=q, k=k, v=v, out=out, softmax_lse=softmax_lse, dq=dq, dk=dk, dv=dv,
                cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, seqused_q=seqused_q, seqused_k=seqused_k,
                max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, softmax_scale=softmax_scale,
                is_causal=causal, window_size_left=-1, window_size_right=-1, softcap=0.0, deterministic=False,
                sm_margin=0)
