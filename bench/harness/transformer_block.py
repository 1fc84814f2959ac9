"""A pre-norm transformer block around the PrefixLM op: the op's cost inside one layer's training step.

    h   = x + W_o . attn(RMSNorm(x) W_q, RMSNorm(x) W_k, RMSNorm(x) W_v)
    out = h + W_down . (silu(RMSNorm(h) W_gate) * RMSNorm(h) W_up)

hidden = heads x head_dim, the MLP 4 x hidden unless set. Q, K and V come from three projections
(the FLOPs of a fused QKV) so the op gets contiguous inputs without copies. Parameters and activations
are in the workload's dtype: bf16 on the GPU suites; the CPU `smoke` suite is float32, because bf16
matmuls on the CPU are slow and it only checks the pipeline.

`prepare_block` fits the sweep's implementation interface: the block reads the workload's packed
batch (its metadata, and its `q` reshaped to [T, hidden] as the block's input) and returns its output
as [T, heads, head_dim], so the harness times `forward()` and `out.backward(workload.dout)` exactly
as it does for the bare op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.harness.implementations import Implementation, Prepared
from bench.harness.workloads import Workload
from bench.spec.names import BLOCK_PREFIX
from prefixlm_attn.metadata import BatchMetadata
from prefixlm_attn.op import prefixlm_attention
from prefixlm_attn.variants import VARIANTS

MLP_RATIO = 4
RMS_EPS = 1e-6

Attention = Callable[[Tensor, Tensor, Tensor], Tensor]      # q, k, v [T, heads, head_dim] -> out


@dataclass(frozen=True)
class BlockShape:
    heads: int
    head_dim: int
    mlp_hidden: Optional[int] = None       # None: MLP_RATIO x hidden

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim

    @property
    def mlp(self) -> int:
        return self.mlp_hidden if self.mlp_hidden is not None else MLP_RATIO * self.hidden

    def matmul_flops(self, tokens: int) -> int:
        """Forward FLOPs of the block's matmuls over `tokens` rows (backward: twice this)."""
        return 2 * tokens * (4 * self.hidden * self.hidden + 3 * self.hidden * self.mlp)


def init_params(shape: BlockShape, device: str | torch.device, dtype: torch.dtype, seed: int = 0) -> dict[str, Tensor]:
    """Seeded weights (N(0, 1/fan_in), drawn on the CPU so every device gets the same numbers), norms at 1."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    h, m = shape.hidden, shape.mlp

    def linear(out_features: int, in_features: int) -> Tensor:
        w = torch.randn((out_features, in_features), generator=gen) / math.sqrt(in_features)
        return w.to(device=device, dtype=dtype).requires_grad_(True)

    params = {"w_q": linear(h, h), "w_k": linear(h, h), "w_v": linear(h, h), "w_o": linear(h, h),
              "w_gate": linear(m, h), "w_up": linear(m, h), "w_down": linear(h, m)}
    for norm in ("norm_attn", "norm_mlp"):
        params[norm] = torch.ones(h, device=device, dtype=dtype).requires_grad_(True)
    return params


def op_attention(meta: BatchMetadata, variant: str, backend: str) -> Attention:
    """The PrefixLM op over a packed batch, as the block's attention."""
    return lambda q, k, v: prefixlm_attention(q, k, v, meta, variant=variant, backend=backend)


def block_forward(x: Tensor, params: dict[str, Tensor], shape: BlockShape, attention: Attention) -> Tensor:
    """One pre-norm block over packed rows x [T, hidden] -> [T, hidden]."""
    rows = x.shape[0]
    y = F.rms_norm(x, (shape.hidden,), params["norm_attn"], RMS_EPS)
    q, k, v = (F.linear(y, params[w]).view(rows, shape.heads, shape.head_dim) for w in ("w_q", "w_k", "w_v"))
    h = x + F.linear(attention(q, k, v).reshape(rows, shape.hidden), params["w_o"])
    z = F.rms_norm(h, (shape.hidden,), params["norm_mlp"], RMS_EPS)
    return h + F.linear(F.silu(F.linear(z, params["w_gate"])) * F.linear(z, params["w_up"]), params["w_down"])


def build_block(w: Workload, backend: str, variant: str,
                mlp_hidden: Optional[int] = None) -> tuple[Callable[[], Tensor], dict[str, Tensor], BlockShape]:
    """The block on the workload's batch: a `forward()` returning [T, heads, head_dim], its weights, its shape."""
    cfg = w.shape
    shape = BlockShape(cfg.heads, cfg.head_dim, mlp_hidden)
    params = init_params(shape, w.device, w.q.dtype, cfg.seed)
    attention = op_attention(w.meta, variant, backend)

    def forward() -> Tensor:
        for p in params.values():      # a fresh step: weight gradients are written, not accumulated
            p.grad = None
        x = w.q.reshape(cfg.tokens, shape.hidden)
        return block_forward(x, params, shape, attention).view(cfg.tokens, cfg.heads, cfg.head_dim)

    return forward, params, shape


def prepare_block(w: Workload, backend: str, variant: str, mlp_hidden: Optional[int] = None) -> Prepared:
    """The sweep's view of the block: `Prepared(forward)`, timed with `out.backward(w.dout)` like the op."""
    forward, params, shape = build_block(w, backend, variant, mlp_hidden)
    return Prepared(forward, notes={"block": {
        "hidden": shape.hidden, "mlp_hidden": shape.mlp, "variant": variant,
        "parameters": sum(p.numel() for p in params.values()),
        "matmul_flops_fwd": shape.matmul_flops(w.shape.tokens)}})


def block_implementation(variant: str, mlp_hidden: Optional[int] = None) -> Implementation:
    """`block:<variant>`: the op's variant inside a transformer block, measured beside the bare op."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return Implementation(f"{BLOCK_PREFIX}{variant}", "block",
                          f"pre-norm transformer block (RMSNorm, QKV/out projections, SwiGLU MLP) around {variant}",
                          lambda w, backend: prepare_block(w, backend, variant, mlp_hidden), None)
