"""Which backward tile shape the single pass asks the patched FA3 for (`prefix_wide_tiles`).

FA3's head-dim-128 causal backward uses 64 x 128 tiles; its unmasked backward uses 80 x 128 tiles
(dQ computed swapped), faster on unmasked work. The patched build can run the 80 x 128 shape with the
causal + prefix mask. Measured on an H100 (results/h100/single_pass_tiles/), that wide shape is slower
than the narrow one on every PrefixLM batch of the default suite, prefix-dominated ones included
(backward +1.5 to +3 % of the ideal), so `auto` keeps the narrow shape.

The environment variable `PREFIXBENCH_SINGLE_PASS_TILES` (`wide`, `narrow`, `auto`; default `auto`)
overrides the choice, read at every call so an experiment can flip it between runs of one process.
"""
from __future__ import annotations

import os

TILES_ENV = "PREFIXBENCH_SINGLE_PASS_TILES"
TILE_CHOICES = ("wide", "narrow", "auto")
AUTO_CHOICE = "narrow"      # what `auto` picks for every batch (see the module docstring)


class InvalidTilesChoice(ValueError):
    """The environment names a tile choice that does not exist."""


def tiles_choice() -> str:
    """The override from the environment, `auto` when unset."""
    value = os.environ.get(TILES_ENV, "auto").strip().lower() or "auto"
    if value not in TILE_CHOICES:
        raise InvalidTilesChoice(f"{TILES_ENV}={value!r}: choose one of {', '.join(TILE_CHOICES)}")
    return value


def single_pass_wide_tiles() -> bool:
    """Whether the single pass's backward asks for the wide tiles (the kernel ignores it off hdim 128).
    Host-only: reads the environment, never the device."""
    choice = tiles_choice()
    if choice == "auto":
        choice = AUTO_CHOICE
    return choice == "wide"
