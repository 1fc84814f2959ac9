"""Which backward tile shape the single pass asks the patched FA3 for (`prefix_wide_tiles`).

FA3's head-dim-128 causal backward uses 64 x 128 tiles; its unmasked backward uses 80 x 128 tiles
(dQ computed swapped), which run faster on unmasked tiles. A PrefixLM batch whose pairs sit mostly in
prefixes is mostly unmasked tiles, so the wide shape (with the causal + prefix mask) pays off there; a
batch whose pairs sit mostly in response triangles keeps the narrow causal shape.

The rule reads the batch's host pair counts (`pair_counts.py`), never the device. The environment
variable `PREFIXBENCH_SINGLE_PASS_TILES` (`wide`, `narrow`, `auto`; default `auto`) overrides it,
read at every call so an experiment can flip it between runs of one process.
"""
from __future__ import annotations

import os
from typing import Optional

from prefixlm_attn.pair_counts import BatchPairs, prefixlm_pair_counts
from prefixlm_attn.passes import PassPlan

TILES_ENV = "PREFIXBENCH_SINGLE_PASS_TILES"
TILE_CHOICES = ("wide", "narrow", "auto")
# auto: wide when at most this share of the batch's pairs lies in response triangles (c x c causal).
MAX_TRIANGLE_SHARE_WIDE = 0.25


class InvalidTilesChoice(ValueError):
    """The environment names a tile choice that does not exist."""


def tiles_choice() -> str:
    """The override from the environment, `auto` when unset."""
    value = os.environ.get(TILES_ENV, "auto").strip().lower() or "auto"
    if value not in TILE_CHOICES:
        raise InvalidTilesChoice(f"{TILES_ENV}={value!r}: choose one of {', '.join(TILE_CHOICES)}")
    return value


def triangle_share(pairs: BatchPairs) -> float:
    """Share of the batch's PrefixLM pairs inside response triangles (0 for an empty batch)."""
    triangle = pairs.passes["key_response"].exact
    total = pairs.passes["key_prefix"].exact + triangle
    return triangle / total if total else 0.0


def wide_tiles_by_rule(pairs: BatchPairs) -> bool:
    """The auto rule: wide tiles when the response triangles hold few of the pairs."""
    return triangle_share(pairs) <= MAX_TRIANGLE_SHARE_WIDE


def _plan_pairs(plan: PassPlan) -> Optional[BatchPairs]:
    if plan.pair_counts is not None:
        return BatchPairs.from_tensor(plan.pair_counts)
    if plan.prefix_lens.device.type == "cpu":
        return prefixlm_pair_counts(plan.prefix_lens.tolist(), plan.causal_lens.tolist())
    return None     # lengths on the device only: reading them would synchronise


def single_pass_wide_tiles(plan: PassPlan) -> bool:
    """Whether the single pass's backward asks for the wide tiles (the kernel ignores it off hdim 128)."""
    choice = tiles_choice()
    if choice != "auto":
        return choice == "wide"
    if plan.is_causal:
        return False        # every pair is causal: the narrow causal shape
    pairs = _plan_pairs(plan)
    return pairs is not None and wide_tiles_by_rule(pairs)
