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
from plots.palette import FAILURE  # noqa: E402
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
    base = next(p["baseline"] for per in cost.values() for pts in per.values() for p in pts)
    axes[0].set_ylabel(f"backward time / {base}'s (x)")
    fig.suptitle(f"Backward time of each variant over {base}'s, paired (95% interval)")
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


def boundary_figure(data: RunData) -> Figure | None:
    """Only the patterns that fail some variant, as rows; variants as columns; a failure in the alarm colour.

    Patterns every variant passes are counted in the caption, not drawn (they were most of the grid)."""
    m = fd.boundary_matrix(data.validation)
    if not m["cells"]:
        return None
    bad = [p for p in m["patterns"] if any(m["cells"].get((v, p), {}).get("outcome", "ok") != "ok"
                                           for v in m["variants"])]
    if not bad:
        return None
    nv, np_ = len(m["variants"]), len(bad)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.25 * nv + 2.8), 0.36 * np_ + 1.5), layout="constrained")
    for j, v in enumerate(m["variants"]):
        for i, p in enumerate(bad):
            cell = m["cells"].get((v, p))
            if cell is None:
                continue
            ok = cell["outcome"] == "ok"
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#e8f3ee" if ok else FAILURE,
                                       edgecolor="white", lw=1.5))
            ax.text(j, i, "ok" if ok else cell["outcome"].upper(), ha="center", va="center", fontsize=9,
                    color="#225544" if ok else "white", fontweight="normal" if ok else "bold")
    ax.set_xlim(-0.5, nv - 0.5)
    ax.set_ylim(np_ - 0.5, -0.5)
    ax.set_xticks(range(nv), [short_label(v) for v in m["variants"]], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks(range(np_), bad, fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
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
    largest = {r["distribution"]: r["tokens"] for r in rows}          # one panel per distribution, at its
    rows = [r for r in rows if r["tokens"] == largest[r["distribution"]]]   # largest budget (all in the table)
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
    "hot_path_cost": ("Backward time of each variant over the baseline's", hot_path_figure),
    "phases": ("Where the backward time goes", phases_figure),
    "boundary": ("Batch patterns that fail some variant", boundary_figure),
    "peers": ("Peers: forward and backward time", peers_figure),
}


def write_figure_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """A figure's data beside it."""
    return write_rows_csv(rows, path)


def _save(fig: Figure, out_dir: Path, name: str) -> tuple[Path, Path]:
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    fig.savefig(png, dpi=DPI)
    with plt.rc_context({"svg.hashsalt": "prefixbench"}):   # fixed ids and no date: a regenerated
        fig.savefig(svg, metadata={"Date": None})          # report diffs clean
    plt.close(fig)
    return png, svg


def render_all(data: RunData, out_dir: Path, verdict: Any = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Write each figure as PNG, SVG and its data as CSV under out_dir; return the written ones (the effect
    figure first, `main: True`) with a caption stating each one's takeaway, and notes on skipped ones."""
    from plots.captions import CAPTIONS
    from plots.effect_figure import effect_caption, effect_figure, effect_rows, model_caption, model_figure
    out_dir.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    if verdict is not None:
        for name, title, make, caption, main in (
                ("effect", "The PR's saving per attention backward against tokens per batch", effect_figure,
                 effect_caption, True),
                ("byte_model", "Measured hot-path saving against the byte model's prediction", model_figure,
                 model_caption, False)):
            with plt.rc_context(RC):
                fig = make(verdict)
            if fig is None:
                notes.append(f"figure '{title}' skipped: no paired delta of the study's pair in these records")
                continue
            png, svg = _save(fig, out_dir, name)
            csv_path = write_figure_csv(effect_rows(verdict), out_dir / f"{name}.csv")
            written.append({"name": name, "title": title, "png": png, "svg": svg, "csv": csv_path,
                            "caption": caption(verdict), "main": main})
    for name, (title, make) in FIGURES.items():
        with plt.rc_context(RC):
            fig = make(data)
        if fig is None:
            notes.append(f"figure '{title}' skipped: no data for it in these records")
            continue
        png, svg = _save(fig, out_dir, name)
        csv_path = write_figure_csv(fd.figure_rows(name, data.records, data.validation), out_dir / f"{name}.csv")
        written.append({"name": name, "title": title, "png": png, "svg": svg, "csv": csv_path,
                        "caption": CAPTIONS[name](data, verdict), "main": False})
    return written, notes
