"""Matplotlib figures (headless) from plots.figure_data; each returns None when it has nothing to show."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.results.io import write_rows_csv
from plots import figure_data as fd  # noqa: E402
from plots.layout import dodge, legend_below, panels, short_label, token_axis  # noqa: E402
from plots.palette import colors as colors_for  # noqa: E402 - one colour per implementation everywhere
from plots.records import RunData  # noqa: E402

DPI = 130
RC = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9.5,
      "ytick.labelsize": 9.5, "legend.fontsize": 9.5, "figure.titlesize": 11.5}     # labels >= 9 pt
# phases are not implementations: muted tones that no implementation uses
PHASE_COLORS = {"alloc + zero-fill": "#b2182b", "bidirectional pass": "#9ecae1", "causal pass": "#fdd0a2",
                "single pass": "#c994c7", "accumulate": "#a1d99b", "other": "#d9d9d9"}
CLIP_RATIO = 2.5     # a bar longer than this x the next longest is clipped, its value written at the clip
OUTCOME_COLORS = {"ok": "#4caf50", "unwritten": "#ffb300", "wrong": "#e53935", "crashed": "#6a1b9a"}


def hot_path_figure(data: RunData) -> Figure | None:
    cost = fd.hot_path_cost(data.records)
    if not cost:
        return None
    variants = list(dict.fromkeys(v for per in cost.values() for v in per))
    colors = colors_for(variants)
    fig, axes = panels(len(cost))
    for ax, (dist, per_variant) in zip(axes, sorted(cost.items())):
        for variant, pts in per_variant.items():
            x = dodge([p["tokens"] for p in pts], variants.index(variant), len(variants))
            y = [p["ratio"] for p in pts]
            err = [[max(0.0, p["ratio"] - p["lo"]) for p in pts], [max(0.0, p["hi"] - p["ratio"]) for p in pts]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colors[variant], label=variant)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        token_axis(ax, [p["tokens"] for pts in per_variant.values() for p in pts])
        ax.set_title(f"distribution: {dist}", fontsize="medium")
    axes[0].set_ylabel("backward time / best variant's (x)")
    fig.suptitle("Hot-path cost: backward relative to the best variant (95% interval)")
    legend_below(fig, axes)
    return fig


def phases_figure(data: RunData) -> Figure | None:
    rows = fd.phase_breakdown(data.records)
    if not rows:
        return None
    largest = {}
    for r in rows:  # one panel per distribution, at its largest token budget
        largest[r["distribution"]] = max(largest.get(r["distribution"], 0), r["tokens"])
    segs = [s for s in list(fd.PHASE_SEGMENTS) + ["other"] if any(r["segments_ms"].get(s, 0) > 0 for r in rows)]
    colors = PHASE_COLORS
    fig, axes = panels(len(largest), sharey=False)
    for ax, dist in zip(axes, sorted(largest)):
        sel = [r for r in rows if r["distribution"] == dist and r["tokens"] == largest[dist]]
        names = [r["variant"] for r in sel]
        left = [0.0] * len(sel)
        for seg in segs:
            widths = [max(0.0, r["segments_ms"][seg]) for r in sel]  # negative "other" = overlapping timers
            ax.barh(names, widths, left=left, color=colors[seg], label=seg)
            if seg != "other":     # each phase's 95% interval, drawn at the end of its segment
                ends = [a + w for a, w in zip(left, widths)]
                err = [[max(0.0, w - r["segments_lo"][seg]) for r, w in zip(sel, widths)],
                       [max(0.0, r["segments_hi"][seg] - w) for r, w in zip(sel, widths)]]
                keep = [i for i, w in enumerate(widths) if w > 0]
                if keep:
                    ax.errorbar([ends[i] for i in keep], [names[i] for i in keep],
                                xerr=[[err[0][i] for i in keep], [err[1][i] for i in keep]], fmt="none",
                                ecolor="black", elinewidth=0.8, capsize=2)
            left = [a + b for a, b in zip(left, widths)]
        ax.invert_yaxis()
        ax.set_xlabel("backward time (ms, phase medians)")
        ax.set_title(f"{dist}, {largest[dist] // 1024}k tokens")
    fig.suptitle("Where the backward time goes (phase medians; whiskers: each phase's 95% interval)")
    legend_below(fig, axes, ncols=5)
    return fig


def spaced_tick_labels(x: list[float], labels: list[str], min_gap: float = 0.06) -> list[str]:
    """`labels` with those blanked that sit closer than `min_gap` of the axis span to the last one kept."""
    span = (max(x) - min(0.0, min(x))) or 1.0
    kept, last = [], None
    for xi, label in sorted(zip(x, labels)):
        show = last is None or (xi - last) / span >= min_gap
        kept.append((xi, label if show else ""))
        last = xi if show else last
    by_x = dict(kept)
    return [by_x[xi] for xi in x]


def scaling_figure(data: RunData) -> Figure | None:
    """The PR's saving (zeros_always - guarded_passthrough, paired) against tokens per batch, linear axes,
    with the byte model's prediction; one panel per distribution measured at two or more token budgets."""
    series = {d: pts for d, pts in fd.pr_saving(data.records).items() if len({p["tokens"] for p in pts}) >= 2}
    if not series:
        return None
    fig, axes = panels(len(series), width=5.5, height=4.0, sharey=False)
    measured_color, model_color = colors_for(["guarded_passthrough", "zeros_always"]).values()
    for ax, (dist, pts) in zip(axes, sorted(series.items())):
        x = [p["tokens"] / 1024 for p in pts]
        ax.errorbar(x, [p["saving_ms"] for p in pts], yerr=[[p["saving_ms"] - p["lo"] for p in pts],
                                                             [p["hi"] - p["saving_ms"] for p in pts]],
                    marker="o", capsize=3, color=measured_color, label="measured saving (paired, 95% CI)")
        model = [p for p in pts if p["predicted_ms"] is not None]
        if model:
            mx = [p["tokens"] / 1024 for p in model]
            ax.plot(mx, [p["predicted_ms"] for p in model], ls="--", color=model_color,
                    label="byte model prediction")
            ax.fill_between(mx, [p["predicted_lo"] for p in model], [p["predicted_hi"] for p in model],
                            color=model_color, alpha=0.15, lw=0)
        open_pts = [(xi, p["saving_ms"]) for p, xi in zip(pts, x) if p["converged"] is False]
        if open_pts:     # a marker, not a text label: labels of close token budgets overlapped
            ax.plot(*zip(*open_pts), ls="none", marker="o", markersize=8, markerfacecolor="white",
                    markeredgecolor=measured_color, markeredgewidth=1.5, zorder=3,
                    label="open marker: did not converge (95% CI wider than the target)")
        ax.set_xlim(0, max(x) * 1.05)
        top = max(max(p["hi"] for p in pts), max((p["predicted_hi"] or 0) for p in pts))
        ax.set_ylim(min(0.0, min(p["lo"] for p in pts) * 1.1), top * 1.15)
        ax.set_xticks(x, spaced_tick_labels(x, [f"{t:g}k" for t in x]))
        ax.set_xlabel("tokens per batch")
        ax.set_ylabel("backward saving (ms)")
        ax.set_title(f"distribution: {dist}")
        ax.grid(alpha=0.3)
    fig.suptitle("The PR's saving per attention backward (zeros_always - guarded_passthrough) vs tokens per batch")
    legend_below(fig, axes, ncols=2)
    return fig


def prediction_figure(data: RunData) -> Figure | None:
    pts = fd.predicted_vs_measured(data.records)
    if not pts:
        return None
    variants = list(dict.fromkeys(p["variant"] for p in pts))
    colors = colors_for(variants)
    fig, ax = plt.subplots(figsize=(6.5, 5.2), layout="constrained")
    for v in variants:
        sel = [p for p in pts if p["variant"] == v]
        ax.errorbar([p["predicted_ms"] for p in sel], [p["measured_ms"] for p in sel],
                    xerr=[[max(0.0, p["predicted_ms"] - p["predicted_lo"]) for p in sel],
                          [max(0.0, p["predicted_hi"] - p["predicted_ms"]) for p in sel]],
                    yerr=[[max(0.0, p["measured_ms"] - p["measured_lo"]) for p in sel],
                          [max(0.0, p["measured_hi"] - p["measured_ms"]) for p in sel]],
                    fmt="o", ms=5, capsize=2, elinewidth=0.8, color=colors[v], label=v)
    hi = max(max(p["predicted_ms"], p["measured_ms"]) for p in pts) * 1.05 or 1.0
    lo = min(0.0, min(min(p["predicted_ms"], p["measured_ms"]) for p in pts))
    ax.plot([lo, hi], [lo, hi], color="grey", ls=":", label="y = x")
    ax.set_xlabel("predicted extra backward time vs best (ms, byte model)")
    ax.set_ylabel("measured extra backward time vs best (ms)")
    ax.set_title("Byte model: predicted vs measured extra time (95% intervals)")
    fig.legend(loc="outside lower center", ncols=min(4, len(variants) + 1), frameon=False, fontsize="small")
    return fig


def boundary_figure(data: RunData) -> Figure | None:
    """Patterns as rows (there are many; their names stay horizontal), variants as columns."""
    m = fd.boundary_matrix(data.validation)
    if not m["cells"]:
        return None
    nv, np_ = len(m["variants"]), len(m["patterns"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * nv + 3), 0.32 * np_ + 1.8), layout="constrained")
    for j, v in enumerate(m["variants"]):
        for i, p in enumerate(m["patterns"]):
            cell = m["cells"].get((v, p))
            if cell is None:
                continue
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=OUTCOME_COLORS.get(cell["outcome"], "grey"),
                                       edgecolor="white", lw=1))
            text = cell["outcome"] + (" (exp.)" if cell["expected_to_fail"] else "")
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small",
                    color="white" if cell["outcome"] != "ok" else "black")
    ax.set_xlim(-0.5, nv - 0.5)
    ax.set_ylim(np_ - 0.5, -0.5)
    ax.set_xticks(range(nv), [short_label(v) for v in m["variants"]], fontsize="small")
    ax.xaxis.tick_top()
    ax.set_yticks(range(np_), m["patterns"], fontsize="small")
    ax.set_ylabel("length pattern")
    ax.set_title("Boundary checks: worst outcome per variant and pattern (exp. = failure expected)",
                 fontsize="medium", loc="left", pad=12)
    return fig


def _clip_at(values: list[float]) -> float | None:
    """Where to clip the axis so one very long bar (dense SDPA) does not squash the rest; None: no clip."""
    ordered = sorted((v for v in values if v), reverse=True)
    if len(ordered) < 2 or ordered[0] < CLIP_RATIO * ordered[1]:
        return None
    return 1.35 * ordered[1]


def peers_figure(data: RunData) -> Figure | None:
    """One panel per configuration: forward (light) and backward (solid) bars per implementation in its
    fixed colour, 95% intervals as whiskers; a bar far longer than the rest is clipped with its value written."""
    rows = sorted(fd.peers(data.records), key=lambda r: (r["distribution"], r["tokens"]))
    if not rows:
        return None
    n_impl = max(len(r["implementations"]) for r in rows)
    fig, axes = panels(len(rows), width=5.6, height=0.42 * n_impl + 1.8, sharey=False)
    for ax, row in zip(axes, rows):
        impls = row["implementations"]
        colors = colors_for([i["name"] for i in impls])
        clip = _clip_at([i[f"{m}_ms"] or 0.0 for i in impls for m in ("forward", "backward")])
        for off, metric, alpha in ((-0.2, "forward", 0.45), (0.2, "backward", 1.0)):
            for k, i in enumerate(impls):
                v = i[f"{metric}_ms"]
                if v is None:
                    continue
                shown = min(v, clip) if clip else v
                ax.barh(k + off, shown, height=0.38, color=colors[i["name"]], alpha=alpha,
                        hatch="//" if metric == "forward" else None, edgecolor="white", lw=0)
                lo, hi = i.get(f"{metric}_lo"), i.get(f"{metric}_hi")
                if clip and v > clip:
                    ax.text(clip, k + off, f" {v:.3g} ms →", va="center", ha="left", fontsize=9,
                            fontweight="bold")
                elif lo is not None and hi is not None:
                    ax.errorbar(v, k + off, xerr=[[max(0.0, v - lo)], [max(0.0, hi - v)]], fmt="none",
                                ecolor="black", elinewidth=0.8, capsize=2)
                    ax.text(hi, k + off, f" {v:.3g}", va="center", ha="left", fontsize=9)
        ax.set_yticks(range(len(impls)), [i["name"] + (" (peer)" if i["kind"] == "peer" else "") for i in impls])
        ax.invert_yaxis()
        right = (clip or max(max(i["forward_ms"] or 0, i["backward_ms"] or 0) for i in impls))
        ax.set_xlim(0, right * 1.3)
        ax.set_xlabel("time (ms, median)" + (" - axis clipped, long bar's value written" if clip else ""))
        ax.set_title(f"{row['distribution']}, {row['tokens'] // 1024}k tokens")
    handles = [plt.Rectangle((0, 0), 1, 1, color="#777", alpha=0.45, hatch="//"), plt.Rectangle((0, 0), 1, 1,
                                                                                               color="#777")]
    fig.legend(handles, ["forward (light, hatched)", "backward (solid)"], loc="outside lower center", ncols=2,
               frameon=False)
    fig.suptitle("Peers and variants: forward and backward time per implementation (95% intervals)")
    return fig


FIGURES: dict[str, tuple[str, Callable[[RunData], Figure | None]]] = {
    "hot_path_cost": ("Hot-path cost relative to the best variant", hot_path_figure),
    "phases": ("Where the backward time goes", phases_figure),
    "scaling": ("The PR's saving against tokens per batch, with the byte model", scaling_figure),
    "prediction": ("Predicted vs measured extra time", prediction_figure),
    "boundary": ("Boundary validation matrix", boundary_figure),
    "peers": ("Peers: forward and backward time", peers_figure),
}


def write_figure_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """A figure's data beside it."""
    return write_rows_csv(rows, path)


def render_all(data: RunData, out_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Write each figure as PNG, SVG and its data as CSV under out_dir; return the written ones and notes
    on skipped ones."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    for name, (title, make) in FIGURES.items():
        with plt.rc_context(RC):
            fig = make(data)
        if fig is None:
            notes.append(f"figure '{title}' skipped: no data for it in these records")
            continue
        png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
        fig.savefig(png, dpi=DPI)
        with plt.rc_context({"svg.hashsalt": "prefixbench"}):   # fixed ids and no date: a regenerated
            fig.savefig(svg, metadata={"Date": None})          # report diffs clean
        plt.close(fig)
        csv_path = write_figure_csv(fd.figure_rows(name, data.records, data.validation), out_dir / f"{name}.csv")
        written.append({"name": name, "title": title, "png": png, "svg": svg, "csv": csv_path})
    return written, notes
