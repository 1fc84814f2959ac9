"""Sharding a sweep across the GPUs of a node (or nodes) under torchrun.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; each rank takes a disjoint, cost-balanced share of
the grid on its own GPU and appends its records to `DIR/rank-<r>.jsonl`; after a barrier rank 0
merges every rank file into `DIR/results.jsonl` in grid order, the same file a single process
writes. The process group only coordinates (barriers), so it uses gloo on every machine.
"""
from __future__ import annotations

import heapq
from datetime import timedelta
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from bench.results.io import read_record_file, write_jsonl

T = TypeVar("T")


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "RankInfo":
        env = os.environ if environ is None else environ
        return cls(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)),
                   local_rank=int(env.get("LOCAL_RANK", 0)))


def shard(items: Sequence[T], cost: Callable[[T], float], rank: int, world_size: int) -> list[T]:
    """This rank's share: longest-processing-time-first onto the least-loaded rank.

    Deterministic (ties broken by rank, then by grid position), disjoint, covering, and returned
    in grid order so records still come out in a readable order.
    """
    if world_size <= 1:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (-cost(items[i]), i))
    loads = [(0.0, r) for r in range(world_size)]
    heapq.heapify(loads)
    owner: dict[int, int] = {}
    for i in order:
        load, r = heapq.heappop(loads)
        owner[i] = r
        heapq.heappush(loads, (load + cost(items[i]), r))
    return [items[i] for i in range(len(items)) if owner[i] == rank]


def rank_file(out_dir: Path, rank: int) -> Path:
    return Path(out_dir) / f"rank-{rank}.jsonl"


def merge_rank_files(out_dir: Path, world_size: int, grid_order: Iterable[str], variant_order: Sequence[str] = (),
                     extra_records: Iterable[dict] = (),
                     key: Callable[[dict], tuple] = lambda r: (r.get("config_id"), r.get("variant"))) -> Path:
    """Merge `results.jsonl` (earlier runs, for --resume) and every rank file into `results.jsonl`.

    Later records win for the same (config_id, variant); output follows the grid's config order.
    `extra_records` are the other ranks' records gathered over the process group, so multi-node
    runs need no shared filesystem. Rank files are removed once merged.
    """
    out_dir = Path(out_dir)
    merged: dict[tuple, dict] = {}
    for record in read_record_file(out_dir / "results.jsonl", repair=True):
        merged[key(record)] = record
    for r in range(world_size):
        for record in read_record_file(rank_file(out_dir, r), repair=True):
            merged[key(record)] = record
    for record in extra_records:      # sent over the process group: other nodes' local disks
        merged[key(record)] = record
    position = {cid: i for i, cid in enumerate(grid_order)}
    vpos = {name: i for i, name in enumerate(variant_order)}
    ordered = sorted(merged.values(), key=lambda rec: (position.get(rec.get("config_id"), len(position)),
                                                       vpos.get(rec.get("variant"), len(vpos)),
                                                       str(rec.get("variant"))))
    write_jsonl(out_dir / "results.jsonl", ordered)
    for r in range(world_size):
        rank_file(out_dir, r).unlink(missing_ok=True)
    return out_dir / "results.jsonl"


class ProcessGroup:
    """gloo process group for barriers only; a no-op for a single process."""

    def __init__(self, info: RankInfo):
        self.info = info
        self._dist = None
        if info.distributed:
            import torch.distributed as dist
            if not dist.is_initialized():
                # ranks finish their shares at different times: wait for the slowest one
                dist.init_process_group("gloo", rank=info.rank, world_size=info.world_size,
                                        timeout=timedelta(hours=24))
            self._dist = dist

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (e.g. the configurations already recorded, for --resume)."""
        if self._dist is None:
            return obj
        box = [obj]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: T) -> list[T] | None:
        """Every rank's `obj` on rank 0 (None elsewhere)."""
        if self._dist is None:
            return [obj]
        out = [None] * self.info.world_size if self.info.rank == 0 else None
        self._dist.gather_object(obj, out, dst=0)
        return out

    def close(self) -> None:
        if self._dist is not None and self._dist.is_initialized():
            self._dist.destroy_process_group()
