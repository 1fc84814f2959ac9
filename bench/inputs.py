"""One configuration's tensors: a packed batch, its metadata and random Q/K/V/dout on the device.

Everything a measured call needs, built once per configuration and shared by every
implementation measured on it, so they see identical work.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.grid import Config
from bench.workloads import PackedBatch, get_distribution, pack
from prefixlm_attn.dense_reference import attended_pairs
from prefixlm_attn.metadata import BatchMetadata, build_batch_metadata


@dataclass
class Workload:
    config: Config
    batch: PackedBatch
    meta: BatchMetadata
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    dout: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.q.device

    def leaves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.q, self.k, self.v

    def clear_grads(self) -> None:
        for t in self.leaves():
            t.grad = None


def batch_summary(batch: PackedBatch) -> dict[str, int]:
    """What a record says about the batch (attended pairs are the FLOP count's basis)."""
    return {"num_seqs": len(batch.prefix_lens), "prefix_tokens": sum(batch.prefix_lens),
            "causal_tokens": sum(batch.causal_lens), "total_tokens": batch.total_tokens,
            "max_prefix": max(batch.prefix_lens), "max_causal": max(batch.causal_lens),
            "attended_pairs": attended_pairs(batch.prefix_lens, batch.causal_lens)}


def torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def random_inputs(tokens: int, heads: int, head_dim: int, seed: int, device: str | torch.device,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v, dout drawn in float32 from one seeded CPU generator: the same numbers on every device."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return tuple(torch.randn((tokens, heads, head_dim), generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
                 for _ in range(4))


def packed_batch(config: Config) -> PackedBatch:
    return pack(get_distribution(config.distribution), config.tokens, config.seed, config.context)


def build_workload(config: Config, device: str) -> Workload:
    batch = packed_batch(config)
    meta = build_batch_metadata(batch.prefix_lens, batch.causal_lens, config.tokens, device)
    q, k, v, dout = random_inputs(config.tokens, config.heads, config.head_dim, config.seed, device,
                                  torch_dtype(config.dtype))
    return Workload(config, batch, meta, q.requires_grad_(True), k.requires_grad_(True), v.requires_grad_(True), dout)
