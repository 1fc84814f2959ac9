"""One configuration's tensors: the packed batch, its metadata and random Q/K/V/dout on the device.

A `Workload` is built once per configuration and shared by every implementation measured on it,
so they see identical work. It keeps a small frozen `WorkloadShape` (tokens, heads, head_dim,
dtype, seed), not the grid's Config: what runs on the tensors needs their shape, not the sweep's axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.spec.grid import Config
from bench.spec.packing import PackedBatch, packed
from prefixlm_attn.metadata import BatchMetadata, build_batch_metadata

# K/V-sized buffers one configuration holds at its peak: q, k, v, out, dout, dq, dk, dv, the two
# passes' partial outputs and dK/dV pairs, a float32 staging copy (2x for 16-bit dtypes) and slack.
BUFFER_FACTOR = 16


@dataclass(frozen=True)
class WorkloadShape:
    tokens: int                      # the token budget: rows of q/k/v (padding included)
    heads: int
    head_dim: int
    dtype: str
    seed: int = 0

    @classmethod
    def of(cls, config: Config) -> "WorkloadShape":
        return cls(config.tokens, config.heads, config.head_dim, config.dtype, config.seed)


@dataclass
class Workload:
    shape: WorkloadShape
    batch: PackedBatch
    meta: BatchMetadata
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    dout: torch.Tensor
    label: str = ""                  # the configuration id (NVTX range names, per-configuration caches)

    @property
    def device(self) -> torch.device:
        return self.q.device

    def leaves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.q, self.k, self.v

    def clear_grads(self) -> None:
        for t in self.leaves():
            t.grad = None


def batch_bytes(tokens: int, heads: int, head_dim: int, dtype_bytes: int) -> int:
    """Estimated peak bytes of one configuration: BUFFER_FACTOR K/V-sized buffers."""
    return BUFFER_FACTOR * tokens * heads * head_dim * dtype_bytes


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
    return packed(config.distribution, config.tokens, config.seed, config.context)


def build_workload(config: Config, device: str, batch: PackedBatch | None = None) -> Workload:
    """The configuration's tensors on `device`; `batch` is the configuration's packed batch when the
    caller packed it already (the sweep packs once, in the parent)."""
    batch = packed_batch(config) if batch is None else batch
    return workload_of(WorkloadShape.of(config), batch, device, config.config_id)


def workload_of(shape: WorkloadShape, batch: PackedBatch, device: str, label: str = "") -> Workload:
    meta = build_batch_metadata(batch.prefix_lens, batch.causal_lens, shape.tokens, device)
    q, k, v, dout = random_inputs(shape.tokens, shape.heads, shape.head_dim, shape.seed, device,
                                  torch_dtype(shape.dtype))
    return Workload(shape, batch, meta, q.requires_grad_(True), k.requires_grad_(True), v.requires_grad_(True),
                    dout, label)
