"""The figure that shows the effect, perf_report style: the PR's paired saving against tokens per batch.

Two panels share the y axis' meaning, not its scale: the hot path (batches with response tokens) and the
guard branch (no causal tokens). One line per distribution with its 95% band, the byte model's
prediction dashed in the same colour, and the fixed baseline (the study's baseline variant: saving 0)
drawn solid. A point whose interval contains zero is an open marker. The same numbers go to a CSV, and
a second figure sets the measured saving against the byte model's: the quantity the verdict's
"within 20%" sentence counts.
"""
from __future__ import annotations

from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from plots.deltas import FASTER  # noqa: E402
from plots.palette import series_colors  # noqa: E402
from plots.verdict import Verdict, VerdictRow  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MODEL_TOLERANCE = 0.2


def effect_rows(verdict: Verdict) -> list[dict[str, Any]]:
    """One flat row per configuration with a delta: what the figure draws (figures/effect.csv)."""
    out = []
    for r in verdict.hot_rows + verdict.guard_rows:
        if r.saving is None:
            continue
        p = r.predicted or (None, None, None)
        out.append({"panel": "guard branch" if r.guard_branch else "hot path", "distribution": r.distribution,
                    "tokens": r.tokens, "saving_ms": r.saving.median, "lo": r.saving.lo, "hi": r.saving.hi,
                    "pairs": r.saving.n, "status": r.saving_status, "pct_of_bwd": r.saving_pct,
                    "run": r.saving_source, "predicted_ms": p[0], "predicted_lo": p[1], "predicted_hi": p[2]})
    return sorted(out, key=lambda q: (q["panel"], q["distribution"], q["tokens"]))


def _draw(ax, rows: list[VerdictRow], colors: dict[str, str], markers: dict[str, str]) -> None:
    by_dist: dict[str, list[VerdictRow]] = {}
    for r in rows:
        if r.saving is not None:
            by_dist.setdefault(r.distribution, []).append(r)
    ticks: set[int] = set()
    for dist, pts in sorted(by_dist.items()):
        pts.sort(key=lambda r: r.tokens)
        x = [r.tokens / 1024 for r in pts]
        ticks |= {r.tokens for r in pts}
        c = colors[dist]
        ax.fill_between(x, [r.saving.lo for r in pts], [r.saving.hi for r in pts], color=c, alpha=0.18, lw=0)
        ax.plot(x, [r.saving.median for r in pts], color=c, lw=1.6, label=dist)
        for r, xi in zip(pts, x):
            filled = r.saving_status == FASTER
            ax.plot([xi], [r.saving.median], ls="none", marker=markers[dist], ms=6, color=c,
                    markerfacecolor=c if filled else "white", markeredgewidth=1.4, zorder=3)
        model = [(xi, r.predicted) for r, xi in zip(pts, x) if r.predicted is not None]
        if model:
            ax.plot([m[0] for m in model], [m[1][0] for m in model], ls="--", lw=1.1, color=c, alpha=0.9)
    ax.axhline(0.0, color="black", lw=1.0)
    ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks([t / 1024 for t in sorted(ticks)], [f"{t // 1024}k" for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel("tokens per batch")
    ax.grid(alpha=0.3)


def effect_figure(verdict: Verdict) -> Optional[Figure]:
    """Hot-path panel and guard-branch panel of the paired saving baseline - merged, with the byte model."""
    hot = [r for r in verdict.hot_rows if r.saving is not None]
    guard = [r for r in verdict.guard_rows if r.saving is not None]
    if not hot and not guard:
        return None
    s = verdict.study
    dists = sorted({r.distribution for r in hot + guard})
    colors = series_colors(dists)
    markers = {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(dists)}
    panels = [(t, rows) for t, rows in (("hot path: batches with response tokens", hot),
                                        ("guard branch: no causal tokens", guard)) if rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.2), squeeze=False,
                             layout="constrained")
    for ax, (title, rows) in zip(axes[0], panels):
        _draw(ax, rows, colors, markers)
        ax.set_title(title)
    axes[0][0].set_ylabel(f"saving per attention backward (ms)\n{s.baseline} - {s.merged}, paired")
    handles = [plt.Line2D([], [], color=colors[d], marker=markers[d], label=d) for d in dists]
    handles += [plt.Line2D([], [], color="#555", ls="--", label="byte model prediction"),
                plt.Line2D([], [], color="#555", marker="o", markerfacecolor="white", ls="none",
                           label="open: 95% CI contains 0 (same)"),
                plt.Line2D([], [], color="black", lw=1.0, label=f"{s.baseline} (fixed baseline, 0)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize="small")
    return fig


def model_figure(verdict: Verdict) -> Optional[Figure]:
    """Measured hot-path saving against the byte model's prediction, with the +-20% band the verdict counts."""
    rows = [r for r in verdict.hot_rows if r.saving is not None and r.predicted is not None and r.predicted[0]]
    if not rows:
        return None
    dists = sorted({r.distribution for r in verdict.hot_rows + verdict.guard_rows if r.saving is not None})
    colors = series_colors(dists)
    markers = {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(dists)}
    fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
    top = max(max(r.saving.hi, r.predicted[2]) for r in rows) * 1.1
    xs = [0, top]
    ax.fill_between(xs, [x * (1 - MODEL_TOLERANCE) for x in xs], [x * (1 + MODEL_TOLERANCE) for x in xs],
                    color="#bbbbbb", alpha=0.35, lw=0, label="within 20% of the prediction")
    ax.plot(xs, xs, color="black", lw=0.8)
    for d in dists:
        sel = [r for r in rows if r.distribution == d]
        if not sel:
            continue
        ax.errorbar([r.predicted[0] for r in sel], [r.saving.median for r in sel],
                    xerr=[[r.predicted[0] - r.predicted[1] for r in sel], [r.predicted[2] - r.predicted[0] for r in sel]],
                    yerr=[[r.saving.median - r.saving.lo for r in sel], [r.saving.hi - r.saving.median for r in sel]],
                    fmt=markers[d], color=colors[d], ms=5, capsize=2, elinewidth=0.8, label=d)
    ax.set_xlim(0, top)
    ax.set_ylim(min(0, min(r.saving.lo for r in rows)), top)
    ax.set_xlabel("predicted saving (ms, byte model)")
    ax.set_ylabel("measured saving (ms, paired)")
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def effect_caption(verdict: Verdict) -> str:
    """The takeaway of the effect figure, from the same rows."""
    s = verdict.study
    parts = []
    for name, rows in (("hot path", verdict.hot_rows), ("guard branch", verdict.guard_rows)):
        rows = [r for r in rows if r.saving is not None]
        if not rows:
            continue
        fast = [r for r in rows if r.saving_status == FASTER]
        if fast:
            lo, hi = min(r.saving.median for r in fast), max(r.saving.median for r in fast)
            big = max(fast, key=lambda r: r.saving.median)
            parts.append(f"on the {name} {s.merged} saves {lo:.3g} to {hi:.3g} ms per backward over {s.baseline} "
                         f"({len(fast)} of {len(rows)} configurations beyond the noise), most at {big.label}")
        else:
            parts.append(f"on the {name} no saving beyond the noise in {len(rows)} configurations")
    text = "; ".join(parts)
    return (text[0].upper() + text[1:] + ". The saving grows with tokens per batch; dashed lines: the byte "
            "model. Open markers: the interval contains zero.") if text else ""


def model_caption(verdict: Verdict) -> str:
    rows = [r for r in verdict.hot_rows if r.saving is not None and r.predicted is not None and r.predicted[0]]
    if not rows:
        return ""
    within = [r for r in rows if abs(r.saving.median / r.predicted[0] - 1) <= MODEL_TOLERANCE]
    outside = [r for r in rows if r not in within]
    text = (f"The byte model predicts the hot-path saving within 20% in {len(within)} of {len(rows)} "
            "configurations")
    if outside:
        text += "; outside: " + ", ".join(f"{r.label} ({r.saving.median / r.predicted[0]:.2f}x)" for r in outside)
    return text + "."
