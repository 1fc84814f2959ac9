"""One fixed colour per implementation, so a variant looks the same in every figure and report.

Known names get hand-picked colours (the PR's variants in warm tones, prefixbench's own in blue,
peers in greys and greens); an unknown name gets a colour from a fallback list chosen by a stable
hash of the name, so it too is the same in every figure and every run. `block:<variant>` (the
transformer-block workload) shares its variant's colour: figures tell the two apart by line style.
"""
from __future__ import annotations

import hashlib

from bench.spec.names import BLOCK_PREFIX

COLORS: dict[str, str] = {
    # the op's variants
    "unguarded": "#7f7f7f",            # upstream before the guard
    "zeros_always": "#d62728",         # PR #9, reverted
    "guarded_zero_fill": "#ff7f0e",    # PR #13, first commit
    "guarded_passthrough": "#9467bd",  # PR #13 as merged
    "prefix_rows_add": "#1f77b4",      # prefixbench's
    "key_split": "#3182bd",            # prefixbench's: passes cut by keys
    "auto": "#08306b",                 # prefixbench's: per-batch pick
    "single_pass": "#e377c2",          # prefixbench's: one launch, patched FA3
    # peers
    "flex_attention": "#2ca02c",
    "sdpa_dense": "#8c564b",
    "fa3_causal_bound": "#17becf",
    "fa3_bidir_bound": "#bcbd22",
}

FALLBACK: tuple[str, ...] = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#e6550d", "#31a354",
                             "#756bb1")



def color(name: str) -> str:
    """The colour of an implementation, as '#rrggbb'."""
    base = name[len(BLOCK_PREFIX):] if name.startswith(BLOCK_PREFIX) else name
    if base in COLORS:
        return COLORS[base]
    digest = hashlib.sha256(base.encode()).digest()
    return FALLBACK[int.from_bytes(digest[:4], "big") % len(FALLBACK)]


def colors(names: list[str]) -> dict[str, str]:
    """name -> colour for a figure's series (the same name always maps to the same colour)."""
    return {n: color(n) for n in names}
