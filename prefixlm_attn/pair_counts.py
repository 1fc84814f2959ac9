"""How many (query, key) pairs each varlen pass of a PrefixLM batch computes, exactly and in tiles.

Two ways split the same PrefixLM pairs into two passes:

| pass | variant | queries x keys per sequence | mask |
| --- | --- | --- | --- |
| `bidir` | prefix_rows_add | p x p | none |
| `causal` | prefix_rows_add | c x (p + c) | bottom-right causal |
| `key_prefix` | key_split | (p + c) x p | none |
| `key_response` | key_split | c x c | causal |

A kernel pays for whole tiles, so next to the exact count each pass also gets the pairs of the
tiles it visits (FA3's Hopper tiles for head dim 128: forward 128 x 128, backward 64 x 128). Short
responses against long keys waste most of a tile; that is where the two splits differ in time.
Pure host arithmetic on the length lists: computed once per batch, next to the metadata.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

PASS_NAMES = ("bidir", "causal", "key_prefix", "key_response")
FWD_TILE = (128, 128)       # (query rows, key rows) per forward tile
BWD_TILE = (64, 128)        # ... per backward tile


@dataclass(frozen=True)
class PassPairs:
    exact: int          # pairs the mask admits
    fwd_tiles: int      # pairs inside the forward tiles the kernel visits
    bwd_tiles: int      # pairs inside the backward tiles


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def tile_pairs(lq: int, lk: int, causal: bool, tile: tuple[int, int]) -> int:
    """Pairs inside the tiles a kernel visits for one sequence (causal: bottom-right aligned)."""
    bm, bn = tile
    if lq <= 0 or lk <= 0:
        return 0
    n_blocks = _cdiv(lk, bn)
    if not causal:
        return _cdiv(lq, bm) * n_blocks * bm * bn
    tiles = 0
    for i in range(_cdiv(lq, bm)):
        last_key = min(lq, (i + 1) * bm) - 1 + lk - lq          # last key the block's last query sees
        if last_key >= 0:
            tiles += min(n_blocks, last_key // bn + 1)
    return tiles * bm * bn


def _pass_shapes(p: int, c: int) -> dict[str, tuple[int, int, bool, int]]:
    """(queries, keys, causal, exact pairs) of each pass for one sequence."""
    tri = c * (c + 1) // 2
    return {"bidir": (p, p, False, p * p), "causal": (c, p + c, True, c * p + tri),
            "key_prefix": (p + c, p, False, (p + c) * p), "key_response": (c, c, True, tri)}


@dataclass(frozen=True)
class BatchPairs:
    """Per-pass pair counts of a batch, plus its prefix and response token counts."""
    prefix_tokens: int
    causal_tokens: int
    passes: dict[str, PassPairs]

    def as_tensor(self) -> torch.Tensor:
        """int64 CPU [2 + 3 * passes]: what the op reads without touching the device."""
        flat = [self.prefix_tokens, self.causal_tokens]
        for name in PASS_NAMES:
            pp = self.passes[name]
            flat += [pp.exact, pp.fwd_tiles, pp.bwd_tiles]
        return torch.tensor(flat, dtype=torch.int64)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> "BatchPairs":
        flat = [int(x) for x in t.tolist()]
        passes = {name: PassPairs(*flat[2 + 3 * i: 5 + 3 * i]) for i, name in enumerate(PASS_NAMES)}
        return cls(flat[0], flat[1], passes)


def prefixlm_pair_counts(prefix_lens: Sequence[int], causal_lens: Sequence[int]) -> BatchPairs:
    """Exact and tile-visited pairs of each pass (both splits) for one batch of length lists."""
    sums = {name: [0, 0, 0] for name in PASS_NAMES}
    for p, c in zip(prefix_lens, causal_lens):
        for name, (lq, lk, causal, exact) in _pass_shapes(int(p), int(c)).items():
            acc = sums[name]
            acc[0] += exact
            acc[1] += tile_pairs(lq, lk, causal, FWD_TILE)
            acc[2] += tile_pairs(lq, lk, causal, BWD_TILE)
    return BatchPairs(prefix_tokens=int(sum(prefix_lens)), causal_tokens=int(sum(causal_lens)),
                      passes={name: PassPairs(*acc) for name, acc in sums.items()})
