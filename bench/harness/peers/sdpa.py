"""SDPA peer: `scaled_dot_product_attention` over the whole packed batch with a dense [T, T] mask.

What a user without a varlen kernel writes: one block-diagonal PrefixLM boolean mask, PyTorch picks
the kernel (memory-efficient or math on CUDA; cuDNN/flash do not take an arbitrary mask). It computes
all T^2 pairs, so it only fits moderate T: `prepare` refuses (`PeerUnsupported`) above
`SDPA_MAX_TOKENS` or when the math backend's scores would not fit. Padding rows attend themselves
(so no row is fully masked, which would give NaN) and their output is zeroed by a `where` inside the
timed call, so out/dq/dk/dv padding rows are zero as the op's contract says.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.harness.implementations import Prepared
from bench.harness.workloads import Workload
from bench.harness.peers.base import PeerUnsupported, prefixlm_mask_mod, row_tables, timed_ms
from prefixlm_attn.dense_reference import attended_pairs

SDPA_MAX_TOKENS = 32768
SDPA_MEMORY_FRACTION = 0.4
GIB = 1 << 30


def dense_mask_bytes(tokens: int, heads: int) -> int:
    """The boolean mask plus the math backend's float32 scores for every head (the worst case)."""
    return tokens * tokens + tokens * tokens * heads * 4


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_dense_fits(tokens: int, heads: int, device: torch.device) -> None:
    """Raise `PeerUnsupported` (with the bytes it would need) when the dense mask cannot run here."""
    need = dense_mask_bytes(tokens, heads)
    free = free_memory_bytes(device)
    if tokens > SDPA_MAX_TOKENS or need > SDPA_MEMORY_FRACTION * free:
        raise PeerUnsupported(
            f"sdpa_dense: dense [T,T] mask for T={tokens} needs {need / GIB:.1f} GiB "
            f"(mask + {heads}-head float32 scores); limit is T <= {SDPA_MAX_TOKENS} and "
            f"{SDPA_MEMORY_FRACTION:.0%} of {free / GIB:.1f} GiB free on {device.type}")


def dense_mask(w: Workload) -> tuple[Tensor, Tensor]:
    """(mask [T, T] bool, valid [T] bool): PrefixLM within each sequence; padding rows see themselves."""
    doc, pos, plen = row_tables(w)
    valid = doc >= 0
    idx = torch.arange(w.shape.tokens, device=w.device)
    mask = prefixlm_mask_mod(doc, pos, plen)(0, 0, idx[:, None], idx[None, :]) | torch.diag(~valid)
    return mask, valid


def sdpa_forward(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
    q, k, v = (x.transpose(0, 1).unsqueeze(0) for x in (q, k, v))      # [1, H, T, D] views
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).squeeze(0).transpose(0, 1)
    return torch.where(valid[:, None, None], out, 0.0)


def chosen_backend(q: Tensor, mask: Tensor) -> str | None:
    """Which SDPA kernel PyTorch dispatches to for these inputs (private API; None when unknown)."""
    try:
        from torch.nn.attention import SDPBackend
        view = q.transpose(0, 1).unsqueeze(0)
        return SDPBackend(torch._fused_sdp_choice(view, view, view, mask, 0.0, False)).name
    except Exception:  # noqa: BLE001 - informational only
        return None


def prepare_sdpa(w: Workload, backend: str) -> Prepared:
    """`backend` is ignored: SDPA picks its own kernel."""
    check_dense_fits(w.shape.tokens, w.shape.heads, w.device)
    (mask, valid), setup_ms = timed_ms(lambda: dense_mask(w), w.device)
    notes = {"attended_pairs": attended_pairs(w.batch.prefix_lens, w.batch.causal_lens),
             "computed_pairs": w.shape.tokens ** 2, "mask_bytes": mask.numel(),
             "sdpa_backend": chosen_backend(w.q, mask)}
    return Prepared(lambda: sdpa_forward(w.q, w.k, w.v, mask, valid), setup_ms=setup_ms, notes=notes)
