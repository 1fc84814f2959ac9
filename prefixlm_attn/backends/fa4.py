"""FlashAttention-4 (PyPI `flash-attn-4`, module `flash_attn.cute`, CuTe DSL kernels compiled at first call).

Called through `flash_attn.cute.interface._flash_attn_fwd/_flash_attn_bwd`, the two entry points that take
caller buffers (`out`, `lse`, `dq`, `dk`, `dv`) as the project's kernel contract needs. They are private:
the version is pinned (pyproject extra `fa4`) and tests/test_fa4_keywords.py holds the keyword names used
here against the installed signatures. What FA4 does at the contract's edges (an empty pass, which rows
each pass writes) is in contracts.FA4_CONTRACT, read from its source and to be measured on an H100 (docs/FA4_FACTS.md).
"""
from __future__ import annotations

import importlib
from typing import Any, Optional

import torch
from torch import Tensor

from prefixlm_attn.backends.base import Unavailable, both_directions, check_direction

PACKAGE = "flash-attn-4"
PINNED_VERSION = "4.0.0b36"
MODULE = "flash_attn.cute.interface"
INSTALL_HINT = f"pip install '{PACKAGE}=={PINNED_VERSION}' (or pip install -e '.[fa4]')"
SM90_HEAD_DIMS = range(8, 257)        # _validate_head_dims: 8..256, a multiple of 16 bytes
DTYPES = ("bfloat16", "bf16", "float16", "fp16", "half")

# the keyword names this module passes (tests hold them against the installed signatures)
FWD_KEYWORDS = ("q", "k", "v", "cu_seqlens_q", "cu_seqlens_k", "seqused_q", "seqused_k", "max_seqlen_q",
                "max_seqlen_k", "softmax_scale", "causal", "mask_mod", "block_sparse_tensors", "return_lse",
                "out", "lse", "aux_tensors")
BWD_KEYWORDS = ("q", "k", "v", "out", "dout", "lse", "softmax_scale", "causal", "cu_seqlens_q", "cu_seqlens_k",
                "seqused_q", "seqused_k", "max_seqlen_q", "max_seqlen_k", "deterministic", "dq", "dk", "dv",
                "mask_mod", "aux_tensors", "block_sparse_tensors")


def load_interface() -> Any:
    """The `flash_attn.cute.interface` module (ImportError when FA4 or its CuTe DSL is missing)."""
    return importlib.import_module(MODULE)


def installed_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


class FA4Backend:
    name = "fa4"
    kind = "kernel"
    single_pass_variants: tuple[str, ...] = ("fa4_single_pass_sparse", "fa4_single_pass_masked")

    def __init__(self) -> None:
        self._iface: Any = None

    def _load(self) -> Any:
        if self._iface is None:
            self._iface = load_interface()
        return self._iface

    def availability(self, direction: str = "backward") -> Optional[Unavailable]:
        check_direction(direction)
        if not torch.cuda.is_available():
            return Unavailable("no CUDA device (FA4 runs on Hopper and Blackwell GPUs)")
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001 - ImportError, a CuTe DSL that does not load, ...
            return Unavailable(f"{MODULE} does not load ({type(exc).__name__}: {str(exc)[:120]}); {INSTALL_HINT}")
        try:
            major, _ = torch.cuda.get_device_capability()
        except Exception as exc:  # noqa: BLE001 - a device that does not answer
            return Unavailable(f"the CUDA device does not answer ({type(exc).__name__}: {str(exc)[:80]})")
        if major not in (9, 10, 11):
            return Unavailable(f"FA4 here runs on sm_90 and sm_100 (this GPU is sm_{major}x)")
        return None

    def available(self) -> bool:
        return both_directions(self)

    def check_supported(self, *, head_dim: int, dtype: str) -> Optional[Unavailable]:
        if dtype not in DTYPES:
            return Unavailable(f"FA4 has no {dtype} backward (it trains bf16 and fp16)")
        if head_dim not in SM90_HEAD_DIMS or head_dim % 8:
            return Unavailable(f"FA4 has no head dim {head_dim} kernel on sm_90 (8..256, a multiple of 8)")
        return None

    def version_info(self) -> dict:
        found = installed_version()
        info: dict = {"package": PACKAGE, "version": found, "pinned": PINNED_VERSION}
        if found is not None and found != PINNED_VERSION:
            info["warning"] = f"installed {found}, pinned {PINNED_VERSION}: the private entry points may differ"
        for dist in ("nvidia-cutlass-dsl", "quack-kernels"):
            try:
                from importlib.metadata import version
                info[dist] = version(dist)
            except Exception:  # noqa: BLE001 - informational only
                pass
        return info

    def forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, cu_seqlens_q: Tensor,
                cu_seqlens_k: Tensor, seqused_q: Optional[Tensor], seqused_k: Optional[Tensor],
                max_seqlen_q: int, max_seqlen_k: int, causal: bool, softmax_scale: float) -> Tensor:
        iface = self._load()
        lse = torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)
        iface._flash_attn_fwd(
            q=q, k=k, v=v, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, seqused_q=seqused_q,
            seqused_k=seqused_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
            softmax_scale=softmax_scale, causal=causal, return_lse=True, out=out, lse=lse)
        return lse

    def backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                 dq: Tensor, dk: Tensor, dv: Tensor, *, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                 seqused_q: Optional[Tensor], seqused_k: Optional[Tensor], max_seqlen_q: int,
                 max_seqlen_k: int, causal: bool, softmax_scale: float) -> None:
        iface = self._load()
        iface._flash_attn_bwd(
            q=q, k=k, v=v, out=out, dout=dout, lse=softmax_lse, softmax_scale=softmax_scale, causal=causal,
            cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, seqused_q=seqused_q, seqused_k=seqused_k,
            max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, deterministic=False, dq=dq, dk=dk, dv=dv)

    # --- single pass (prefixlm_attn/single_pass.py) ---

    @staticmethod
    def _single_pass_call(inputs) -> dict:
        """Keywords of one single-pass call: the packed sequence (batch of one) with its tables and tiles,
        or varlen with the per-sequence prefix lengths."""
        from prefixlm_attn.backends import fa4_mask_mods
        if inputs.tiles is None:
            return dict(cu_seqlens_q=inputs.cu_seqlens, cu_seqlens_k=inputs.cu_seqlens,
                        max_seqlen_q=inputs.max_seqlen, max_seqlen_k=inputs.max_seqlen,
                        mask_mod=fa4_mask_mods.varlen_prefixlm, aux_tensors=[inputs.prefix_lens])
        from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch
        t = inputs.tiles
        sparse = BlockSparseTensorsTorch(mask_block_cnt=t.mask_cnt, mask_block_idx=t.mask_idx,
                                         full_block_cnt=t.full_cnt, full_block_idx=t.full_idx, block_size=t.block)
        return dict(mask_mod=fa4_mask_mods.packed_prefixlm, aux_tensors=[inputs.doc, inputs.prefix_end],
                    block_sparse_tensors=sparse)

    @staticmethod
    def _rows(inputs, *tensors: Tensor) -> list[Tensor]:
        """Varlen: the tensors as they are; packed: the first `total` rows as a batch of one."""
        if inputs.tiles is None:
            return list(tensors)
        return [t[:inputs.total].unsqueeze(0) for t in tensors]

    def single_pass_forward(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, *, inputs) -> Tensor:
        lse = torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)
        lse_view = lse if inputs.tiles is None else lse[:, :inputs.total].unsqueeze(0)   # [1, heads, total]
        self.single_pass_forward_shaped(*self._rows(inputs, q, k, v, out), lse_view, inputs=inputs)
        return lse

    def single_pass_forward_shaped(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, *,
                                   inputs) -> None:
        """The forward call on tensors already in the form's shape (varlen [T, H, D]; packed [1, total, H, D])."""
        self._load()._flash_attn_fwd(q=q, k=k, v=v, out=out, lse=lse, return_lse=True, causal=False,
                                     softmax_scale=inputs.softmax_scale, **self._single_pass_call(inputs))

    def single_pass_backward(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, softmax_lse: Tensor,
                             dq: Tensor, dk: Tensor, dv: Tensor, *, inputs) -> None:
        lse_view = softmax_lse if inputs.tiles is None else softmax_lse[:, :inputs.total].unsqueeze(0)
        self.single_pass_backward_shaped(*self._rows(inputs, dout, q, k, v, out), lse_view,
                                         *self._rows(inputs, dq, dk, dv), inputs=inputs)

    def single_pass_backward_shaped(self, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                                    dq: Tensor, dk: Tensor, dv: Tensor, *, inputs) -> None:
        """The backward call on tensors already in the form's shape."""
        self._load()._flash_attn_bwd(q=q, k=k, v=v, out=out, dout=dout, lse=lse, causal=False,
                                     softmax_scale=inputs.softmax_scale, deterministic=False, dq=dq, dk=dk, dv=dv,
                                     **self._single_pass_call(inputs))

    # --- compile bookkeeping (CuTe DSL compiles each kernel shape once, at its first call) ---

    def compile_cache_entries(self) -> Optional[int]:
        """How many kernels FA4 has compiled in this process (None before it loads): a count that grows
        inside timed rounds means a shape recompiled there."""
        if self._iface is None:
            return None
        return compiled_kernels(self._iface)


def compiled_kernels(iface: Any) -> Optional[int]:
    """Entries of FA4's in-process compile caches of the forward and backward entry points."""
    total = 0
    for fn in (iface._flash_attn_fwd, iface._flash_attn_bwd):
        cache = getattr(getattr(fn, "compile_cache", None), "cache", None)
        if cache is None:
            return None
        total += len(cache)
    return total
