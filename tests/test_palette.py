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


# ---- colour-vision deficiency: simulated protan / deutan / tritan vision (Machado et al. 2009, severity 1)
CVD = {
    "protan": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deutan": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritan": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _lab(rgb_linear: tuple[float, float, float]) -> tuple[float, float, float]:
    r, g, b = (min(1.0, max(0.0, v)) for v in rgb_linear)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = lambda t: t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116  # noqa: E731
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _seen(hex_colour: str, matrix=None) -> tuple[float, float, float]:
    rgb = tuple(_linear(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    if matrix is not None:
        rgb = tuple(sum(m * c for m, c in zip(row, rgb)) for row in matrix)
    return _lab(rgb)


def _min_distance(colours: list[str], matrix=None) -> float:
    labs = [_seen(c, matrix) for c in colours]
    return min(sum((a - b) ** 2 for a, b in zip(p, q)) ** 0.5 for i, p in enumerate(labs) for q in labs[i + 1:])


def test_figure_colours_stay_apart_for_colour_blind_readers() -> None:
    from bench.spec.study import load_study
    from plots.palette import SERIES
    study = load_study()
    effect = list(SERIES[:6])                     # the effect figure: one colour per distribution
    variants = [color(n) for n in study.variants]
    for name, colours in (("effect figure", effect), ("study variants", variants)):
        assert _min_distance(colours) > 20, name
        for kind, matrix in CVD.items():
            assert _min_distance(colours, matrix) > 8, (name, kind)   # CIELAB distance: told apart
    assert _min_distance([color("prefix_rows_add"), color("key_split")]) > 20   # no two near-identical blues
