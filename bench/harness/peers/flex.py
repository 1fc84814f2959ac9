"""FlexAttention peer: one fused kernel with a PrefixLM x document mask over the packed batch.

Query row i sees key row j when both lie in the same sequence and j is in that sequence's prefix or
j <= i. Padding rows see nothing, which FlexAttention returns as zero output (and zero gradients),
matching the op's contract without an extra kernel. On CUDA flex_attention is compiled once at
module level (the only way it is fast). FlexAttention has no backward on the CPU, so there the peer
refuses (`PeerUnsupported`); CPU tests check its mask and its forward (`flex_forward`) instead.
The block mask is built outside the timed call; its construction time is `setup_ms`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from bench.harness.implementations import Prepared
from bench.harness.workloads import Workload
from bench.harness.peers.base import PeerUnsupported, prefixlm_mask_mod, row_tables, timed_ms
from prefixlm_attn.dense_reference import attended_pairs

_compiled: dict[str, Callable] = {}
RECOMPILE_LIMIT = 64    # one compiled kernel per (tokens, heads, head_dim, dtype); defaults allow only 8


def _flex() -> tuple[Callable, Callable]:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    return create_block_mask, flex_attention


def flex_fn(device: torch.device) -> Callable:
    """Compiled flex_attention on CUDA (static shapes), eager elsewhere."""
    _, flex_attention = _flex()
    if device.type != "cuda":
        return flex_attention
    if "cuda" not in _compiled:
        import torch._dynamo.config as dynamo_config
        for attr in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                     "accumulated_cache_size_limit"):
            if hasattr(dynamo_config, attr):
                setattr(dynamo_config, attr, max(getattr(dynamo_config, attr), RECOMPILE_LIMIT))
        _compiled["cuda"] = torch.compile(flex_attention, dynamic=False)
    return _compiled["cuda"]


def _block_mask(mask_mod: Callable, tokens: int, device: torch.device):
    create_block_mask, _ = _flex()
    return create_block_mask(mask_mod, 1, None, tokens, tokens, device=device, _compile=device.type == "cuda")


def flex_forward(q: Tensor, k: Tensor, v: Tensor, block_mask, flex: Callable) -> Tensor:
    """[T, H, D] in and out; flex_attention wants [B, H, T, D], so transposed views."""
    q, k, v = (x.transpose(0, 1).unsqueeze(0) for x in (q, k, v))
    return flex(q, k, v, block_mask=block_mask).squeeze(0).transpose(0, 1)


def workload_block_mask(w: Workload):
    return _block_mask(prefixlm_mask_mod(*row_tables(w)), w.shape.tokens, w.device)


def prepare_flex(w: Workload, backend: str) -> Prepared:
    """`backend` is ignored: flex_attention brings its own kernel."""
    if w.device.type != "cuda":
        raise PeerUnsupported(f"flex_attention: torch {torch.__version__} has no FlexAttention backward "
                              f"on {w.device.type}; it runs on CUDA only")
    flex = flex_fn(w.device)                      # first: raises the recompile limit for the mask builder too
    mask_mod = prefixlm_mask_mod(*row_tables(w))
    build = lambda: _block_mask(mask_mod, w.shape.tokens, w.device)  # noqa: E731
    _, first_ms = timed_ms(build, w.device)       # first build may include compiling the mask builder
    block_mask, setup_ms = timed_ms(build, w.device)
    notes = {"attended_pairs": attended_pairs(w.batch.prefix_lens, w.batch.causal_lens),
             "setup_first_ms": first_ms,
             "block_sparsity": _sparsity(block_mask)}
    return Prepared(lambda: flex_forward(w.q, w.k, w.v, block_mask, flex), setup_ms=setup_ms, notes=notes)


def _sparsity(block_mask) -> float | None:
    try:
        return float(block_mask.sparsity())
    except Exception:  # noqa: BLE001 - informational only
        return None
