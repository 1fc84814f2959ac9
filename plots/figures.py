"""Matplotlib figures (headless) from plots.figure_data; each returns None when it has nothing to show."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from plots import figure_data as fd  # noqa: E402
from plots.layout import colors_for, dodge, legend_below, panels, short_label, token_axis  # noqa: E402
from plots.records import RunData  # noqa: E402

DPI = 130
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
    segs = list(fd.PHASE_SEGMENTS) + ["other"]
    colors = colors_for(segs)
    fig, axes = panels(len(largest), sharey=False)
    for ax, dist in zip(axes, sorted(largest)):
        sel = [r for r in rows if r["distribution"] == dist and r["tokens"] == largest[dist]]
        names = [r["variant"] for r in sel]
        left = [0.0] * len(sel)
        for seg in segs:
            widths = [max(0.0, r["segments_ms"][seg]) for r in sel]  # negative "other" = overlapping timers
            ax.barh(names, widths, left=left, color=colors[seg], label=seg)
            left = [a + b for a, b in zip(left, widths)]
        ax.invert_yaxis()
        ax.set_xlabel("backward time (ms, phase medians)")
        ax.set_title(f"{dist}, T={largest[dist]}", fontsize="medium")
    fig.suptitle("Where the backward time goes")
    legend_below(fig, axes, ncols=5)
    return fig


def scaling_figure(data: RunData) -> Figure | None:
    sc = fd.scaling(data.records)
    if not sc:
        return None
    variants = list(dict.fromkeys(v for d in sc.values() for v in d["backward"]))
    colors = colors_for(variants)
    fig, axes = panels(len(sc), sharey=False)
    for ax, (dist, d) in zip(axes, sorted(sc.items())):
        tokens = []
        for variant, pts in d["backward"].items():
            tokens += [p["tokens"] for p in pts]
            x = dodge([p["tokens"] for p in pts], variants.index(variant), len(variants))
            err = [[p["median"] - p["lo"] for p in pts], [p["hi"] - p["median"] for p in pts]]
            ax.errorbar(x, [p["median"] for p in pts], yerr=err, marker="o", capsize=3, color=colors[variant],
                        label=variant)
        for variant, pts in d["floor"].items():
            x = dodge([p["tokens"] for p in pts], variants.index(variant), len(variants))
            ax.plot(x, [p["floor_ms"] for p in pts], ls="--", marker="v", mfc="none", color=colors[variant],
                    label=f"{variant}: zero-fill floor")
        ax.set_yscale("log")
        token_axis(ax, tokens)
        ax.set_title(f"distribution: {dist}", fontsize="medium")
        ax.set_ylabel("time (ms)")
    fig.suptitle("Scaling: backward time vs tokens; ▽ dashed = zero-fill floor (zero-filled bytes / fill bandwidth)")
    legend_below(fig, axes, ncols=4, order=variants)
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


def peers_figure(data: RunData) -> Figure | None:
    """One panel per configuration (distribution x tokens): forward and backward bars per
    implementation, labelled with TFLOP/s on the pairs each implementation computes."""
    rows = sorted(fd.peers(data.records), key=lambda r: (r["distribution"], r["tokens"]))
    if not rows:
        return None
    fig, axes = panels(len(rows), width=5.5, height=0.5 * max(len(r["implementations"]) for r in rows) + 2.5,
                       sharey=False)
    for ax, row in zip(axes, rows):
        impls = row["implementations"]
        y = range(len(impls))
        for off, metric, color in ((-0.2, "forward", "#90caf9"), (0.2, "backward", "#1565c0")):
            vals = [i[f"{metric}_ms"] or 0.0 for i in impls]
            ax.barh([k + off for k in y], vals, height=0.4, color=color, label=f"{metric} (ms)")
            for k, i in zip(y, impls):
                tf = i.get(f"{metric}_tflops_own")
                if tf:
                    ax.text(vals[k], k + off, f" {tf:.0f}", va="center", fontsize="x-small")
        ax.set_yticks(list(y), [i["name"] + (" (peer)" if i["kind"] == "peer" else "") for i in impls])
        ax.invert_yaxis()
        ax.margins(x=0.25)
        ax.set_xlabel("time (ms, median)")
        ax.set_title(f"{row['distribution']}, T={row['tokens']}", fontsize="medium")
    fig.suptitle("Peers: forward and backward time (bar labels: TFLOP/s on the pairs each implementation computes)")
    legend_below(fig, axes)
    return fig


FIGURES: dict[str, tuple[str, Callable[[RunData], Figure | None]]] = {
    "hot_path_cost": ("Hot-path cost relative to the best variant", hot_path_figure),
    "phases": ("Where the backward time goes", phases_figure),
    "scaling": ("Scaling with tokens, and the zero-fill floor", scaling_figure),
    "prediction": ("Predicted vs measured extra time", prediction_figure),
    "boundary": ("Boundary validation matrix", boundary_figure),
    "peers": ("Peers: time and throughput", peers_figure),
}


def render_all(data: RunData, out_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Write each figure as PNG and SVG under out_dir; return the written ones and notes on skipped ones."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    for name, (title, make) in FIGURES.items():
        fig = make(data)
        if fig is None:
            notes.append(f"figure '{title}' skipped: no data for it in these records")
            continue
        png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
        fig.savefig(png, dpi=DPI)
        with plt.rc_context({"svg.hashsalt": "prefixbench"}):   # fixed ids and no date: a regenerated
            fig.savefig(svg, metadata={"Date": None})          # report diffs clean
        plt.close(fig)
        written.append({"name": name, "title": title, "png": png, "svg": svg})
    return written, notes
