"""plots/palette.py: fixed colours per implementation, stable for unknown names."""
from __future__ import annotations

import re
import subprocess
import sys

from bench.harness.registry import registry
from plots.palette import COLORS, color, colors


def test_every_registered_implementation_has_its_own_fixed_colour() -> None:
    names = [n for n in registry() if not n.startswith("block:")]     # block:<variant> shares its variant's
    assert all(color(n) == color(n.split(":", 1)[1]) for n in registry() if n.startswith("block:"))
    assert set(names) <= set(COLORS)
    assert len({color(n) for n in names}) == len(names)          # no two share a colour
    assert colors(["prefix_rows_add", "zeros_always"]) == colors(["zeros_always", "prefix_rows_add"])


def test_unknown_names_get_a_stable_colour_and_blocks_share_their_variant() -> None:
    c = color("my_new_variant")
    assert re.fullmatch(r"#[0-9a-f]{6}", c)
    assert c == color("my_new_variant")
    other = subprocess.run([sys.executable, "-c", "from plots.palette import color; print(color('my_new_variant'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert other == c                                              # not Python's per-process hash()
    assert color("block:guarded_passthrough") == color("guarded_passthrough")
