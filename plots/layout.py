"""Shared figure plumbing: colours, panel grids, token axes, one legend below all panels."""
from __future__ import annotations

import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def colors_for(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def panels(n: int, width: float = 5.0, height: float = 3.8, sharey: bool = True) -> tuple[Figure, list]:
    """A grid of at most 3 panels a row; unused cells are hidden."""
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.0, width * ncols), height * nrows + 0.6), sharey=sharey,
                             squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def dodge(tokens: list[int], index: int, count: int) -> list[float]:
    """Shift a series sideways on the log2 token axis so error bars at one token count do not hide each other."""
    return [t * 2 ** (0.06 * (index - (count - 1) / 2)) for t in tokens]


def legend_below(fig: Figure, axes: list, ncols: int = 6, order: list[str] | None = None) -> None:
    """One legend for all panels, outside the data area; `order` groups labels by the name they start with."""
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if order:
        labels.sort(key=lambda lab: (next((i for i, o in enumerate(order) if lab.startswith(o)), len(order)), lab))
    if labels:
        fig.legend([handles[lab] for lab in labels], labels, loc="outside lower center", ncols=min(ncols, len(labels)),
                   frameon=False, fontsize="small")


def token_axis(ax, tokens: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(tokens))
    ax.set_xticks(ticks, [f"{t // 1024}k" if t >= 1024 and t % 1024 == 0 else str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("token budget T (tokens)")


def short_label(name: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(name.replace("_", " "), width)) or name
