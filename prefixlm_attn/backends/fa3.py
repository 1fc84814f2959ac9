"""FlashAttention-3 (Hopper) through `torch.ops.flash_attn_3`, called by keyword (tests/test_fa3_keywords.py holds
the names against the op schema). FA3 comes from the flash-attention project's own Hopper install."""
from __future__ import annotations

import importlib
from typing import Optional

import torch
from torch import Tensor

from prefixlm_attn.backends.base import Unavailable, both_directions, check_direction

INSTALL_HINT = "install FA3 from flash-attention's hopper/ folder, as that project's README says"


class FA3Backend:
    name = "fa3"
    kind = "kernel"
    single_pass_variants: tuple[str, ...] = ()     # FA3 has no mask_mod: two-pass variants only

    def __init__(self) -> None:
        self._ops = None

    def _load(self):
        if self._ops is None:
            importlib.import_module("flash_attn_3._C")  # registers torch.ops.flash_attn_3
            self._ops = torch.ops.flash_attn_3
        return self._ops

    def availability(self, direction: str = "backward") -> Optional[Unavailable]:
        check_direction(direction)
        if not torch.cuda.is_available():
            return Unavailable("no CUDA device (FA3 is a Hopper kernel)")
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001 - ImportError, OSError (undefined symbol), ...
            return Unavailable(f"flash_attn_3 does not load ({type(exc).__name__}: {str(exc)[:120]}); "
                               f"{INSTALL_HINT}")
        if direction == "backward":
            from prefixlm_attn.backends.fa3_build import fa3_build_info
            if fa3_build_info().get("backward") is False:
                return Unavailable("this FA3 build has no backward pass (FLASHATTENTION_DISABLE_BACKWARD)")
        return None

    def available(self) -> bool:
        return both_directions(self)

    def check_supported(self, *, head_dim: int, dtype: str) -> Optional[Unavailable]:
        from prefixlm_attn.backends.fa3_build import check_supported
        problem = check_supported(dtype, head_dim)
        return None if problem is None else Unavailable(problem)

    def version_info(self) -> dict:
        """Package, version, the build's head dims/dtypes/flags and where the library was loaded from."""
        from prefixlm_attn.backends.fa3_build import fa3_build_info
        info: dict = {"package": "flash_attn_3", "version": _package_version(), "build": fa3_build_info()}
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

    def build_info(self) -> dict:
        """The former name of `version_info` (env.json readers of older runs)."""
        return self.version_info()

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


def _package_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("flash_attn_3", "flash-attn-3", "flashattn-hopper"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None
