"""One fixed colour per implementation, so a variant looks the same in every figure and report.

Known names get hand-picked colours from the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies; `tests/test_palette.py` checks it under simulated protan/deutan/tritan
vision), peers in further tones; an unknown name gets a colour from a fallback list chosen by a stable
hash of the name, so it too is the same in every figure and every run. `block:<variant>` (the
transformer-block workload) shares its variant's colour: figures tell the two apart by line style.
"""
from __future__ import annotations

import hashlib

from bench.spec.names import BLOCK_PREFIX

# Okabe & Ito, "Color Universal Design" (2008): eight colours told apart by every common colour vision
OKABE_ITO: dict[str, str] = {"orange": "#e69f00", "sky_blue": "#56b4e9", "bluish_green": "#009e73",
                             "yellow": "#f0e442", "blue": "#0072b2", "vermillion": "#d55e00",
                             "reddish_purple": "#cc79a7", "black": "#000000"}
SERIES: tuple[str, ...] = tuple(OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion",
                                                       "reddish_purple", "sky_blue", "black", "yellow"))
FAILURE = OKABE_ITO["vermillion"]      # a crash is a failure, in the colour of alarm

COLORS: dict[str, str] = {
    # the op's variants
    "unguarded": "#999999",                         # upstream before the guard
    "zeros_always": OKABE_ITO["vermillion"],        # PR #9, reverted
    "guarded_zero_fill": OKABE_ITO["orange"],       # PR #13, first commit
    "guarded_passthrough": OKABE_ITO["blue"],       # PR #13 as merged
    "prefix_rows_add": OKABE_ITO["bluish_green"],   # prefixbench's
    "key_split": OKABE_ITO["reddish_purple"],       # prefixbench's: passes cut by keys
    "auto": OKABE_ITO["sky_blue"],                  # prefixbench's: per-batch pick
    "single_pass": OKABE_ITO["black"],              # one launch, patched FA3 (records of earlier runs)
    "fa4_single_pass_sparse": "#332288",            # one FA4 launch: mask_mod + block sparsity
    "fa4_single_pass_masked": "#88ccee",            # one FA4 varlen launch: mask_mod, no tile skipping
    # peers
    "flex_attention": OKABE_ITO["yellow"],
    "sdpa_dense": "#8c564b",
    "fa3_causal_bound": "#882255",
    "fa3_bidir_bound": "#44aa99",
    "fa4_causal_bound": "#aa4499",
    "fa4_bidir_bound": "#117733",
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


def series_colors(names: list[str]) -> dict[str, str]:
    """Colours for series that are not implementations (distributions): Okabe-Ito in a fixed order."""
    return {n: SERIES[i % len(SERIES)] for i, n in enumerate(names)}


def colors(names: list[str]) -> dict[str, str]:
    """name -> colour for a figure's series (the same name always maps to the same colour)."""
    return {n: color(n) for n in names}
