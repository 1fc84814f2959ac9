"""Implementation names as data, torch-free: what printers need to order and group records.

The registry (bench.harness.registry) is the truth about which implementations exist; this module
only says how names are spelled and listed, so the report and compare run without torch.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

BLOCK_PREFIX = "block:"          # `block:<variant>`: the variant inside a transformer block
# variants no longer in the op whose records committed results still hold (listed at their old place)
RETIRED_VARIANTS: tuple[str, ...] = ("single_pass",)
# the op's variants in the order tables list them (prefixlm_attn.variants.VARIANTS plus the retired ones;
# a test keeps them equal)
VARIANT_ORDER: tuple[str, ...] = ("unguarded", "zeros_always", "guarded_zero_fill", "guarded_passthrough",
                                  "prefix_rows_add", "single_pass", "fa4_single_pass_sparse",
                                  "fa4_single_pass_masked", "key_split", "auto")


def variants_first(names: Iterable[str]) -> list[str]:
    """The op's variants in VARIANT_ORDER, then every other name in the order given."""
    names = list(dict.fromkeys(names))
    return [n for n in VARIANT_ORDER if n in names] + [n for n in names if n not in VARIANT_ORDER]

# the peers (bench.harness.peers.PEERS; a test keeps them equal)
PEER_NAMES: tuple[str, ...] = ("flex_attention", "sdpa_dense", "fa3_causal_bound", "fa3_bidir_bound",
                               "fa4_causal_bound", "fa4_bidir_bound")
# the single-pass variants (FA4's: one launch per direction; a test keeps them equal to the backends' lists)
SINGLE_PASS_VARIANTS: tuple[str, ...] = ("fa4_single_pass_sparse", "fa4_single_pass_masked")


def on_backend(name: str, backend: str) -> str:
    """An implementation's name on a backend after a run's first (the backend axis): 'zeros_always [fa4]'.
    On a run's first (or only) backend the name stays bare, so a one-backend run reads as before."""
    return f"{name} [{backend}]"


def split_backend(label: str) -> tuple[str, Optional[str]]:
    """'zeros_always [fa4]' -> ('zeros_always', 'fa4'); a bare name -> (name, None)."""
    if label.endswith("]") and " [" in label:
        name, _, backend = label[:-1].rpartition(" [")
        return name, backend
    return label, None

# the op's phases in execution order (prefixlm_attn.phases.ALL_PHASES; a test keeps them equal)
PHASE_ORDER: tuple[str, ...] = ("fwd.bidir_pass", "fwd.causal_pass", "fwd.merge", "fwd.block_mask", "fwd.single_pass",
                                "fwd.pad_zero", "bwd.alloc", "bwd.zero_fill", "bwd.bidir_pass", "bwd.causal_pass",
                                "bwd.block_mask", "bwd.single_pass", "bwd.accumulate", "bwd.pad_zero")
OUTSIDE_PHASES = "(outside phases)"      # a profile's time in no phase range


def ordered_ranges(names: Sequence[str]) -> list[str]:
    """The op's phases in execution order, then anything else by name, "(outside phases)" last."""
    known = [p for p in PHASE_ORDER if p in names]
    rest = sorted(n for n in names if n not in PHASE_ORDER and n != OUTSIDE_PHASES)
    return known + rest + ([OUTSIDE_PHASES] if OUTSIDE_PHASES in names else [])


def as_ranges(rows: Iterable[int]) -> list[list[int]]:
    """Sorted row indices -> [[start, stop), ...] (JSON-friendly)."""
    out: list[list[int]] = []
    for r in sorted(set(int(x) for x in rows)):
        if out and out[-1][1] == r:
            out[-1][1] = r + 1
        else:
            out.append([r, r + 1])
    return out


def format_ranges(ranges: Sequence[Sequence[int]]) -> str:
    """[[0, 3], [5, 6]] -> "0-2,5" ("-" for none)."""
    return ",".join(f"{a}" if b == a + 1 else f"{a}-{b - 1}" for a, b in ranges) or "-"
