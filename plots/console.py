"""Everything the commands show in a terminal: results on stdout (tables, verdicts), progress and notices on stderr.

The drivers below (bench/, profiles/) return data and take plain callbacks; only this module and `cli.py`
know about rich.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.spec.grid import Config
from bench.results.records import Record
from bench.results.stats import Stat
from bench.spec.names import format_ranges, ordered_ranges

STATUS_STYLE = {"ok": "green", "crashed": "bold red", "oom": "magenta", "error": "red", "skipped": "yellow"}
OUTCOME_STYLE = {"ok": "green", "wrong": "bold red", "unwritten": "bold magenta", "crashed": "bold red"}
VERDICT_STYLE = {"faster": "green", "slower": "bold red", "now failing": "bold red", "fixed": "green"}


def _console(stderr: bool, min_width: int = 0) -> Console:
    """A console on the stream of the moment (test runners swap them); logs and CI get 160 columns, not 80."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    if min_width:
        console.width = max(console.width, min_width)
    return console


def show(renderable: Any, min_width: int = 0) -> None:
    """A result (table or line with markup) on stdout."""
    _console(False, min_width).print(renderable, soft_wrap=isinstance(renderable, str))


def say(text: str) -> None:
    """A plain result line on stdout (no markup, no wrapping)."""
    print(text, flush=True)


def notice(text: str, style: str = "yellow") -> None:
    """A notice or progress line on stderr."""
    _console(True).print(text, style=style or None, soft_wrap=True, markup=False, highlight=False)


def backend_label(backend: Optional[str], device: Optional[str]) -> str:
    """'fa3', or 'reference (GPU)' / 'reference (CPU)': a reference figure is never mistaken for the kernel's."""
    if backend == "reference":
        return f"reference ({'GPU' if device == 'cuda' else 'CPU'})"
    return backend or "-"


# --- variants -------------------------------------------------------------------------------------------------

def implementations_table(entries: list[dict]) -> Table:
    table = Table(title="prefixbench variants and peers", show_lines=True)
    for col in ("name", "kind", "zero_fills", "adds", "fails_on / needs", "recommended"):
        table.add_column(col)
    for e in entries:
        if e["kind"] == "variant":
            name = e["name"] + (" (default)" if e["default"] else "")
            table.add_row(name, "variant", e["zero_fills"], e["adds"], e["fails_on"],
                          "yes" if e["recommended"] else "")
        else:
            table.add_row(e["name"], "peer", "-", "-", e["needs"], "")
    return table


# --- sweep ----------------------------------------------------------------------------------------------------

def fmt_stat(stat: Stat | None) -> str:
    if not stat:
        return "-"
    return f"{stat.median:.3f} [{stat.lo:.3f}, {stat.hi:.3f}]"


@contextmanager
def sweep_progress(enabled: bool = True) -> Iterator[tuple]:
    """Yields (on_start, on_config) hooks for the sweep driver; the bar and its ETA go to stderr."""
    progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
                        console=_console(True), disable=not enabled)
    task = None

    def on_start(total: int) -> None:
        nonlocal task
        task = progress.add_task("", total=total)

    def on_config(config: Config, records: list[Record]) -> None:
        bad = [f"{r.variant}={r.status}" for r in records if r.status != "ok"]
        progress.update(task, advance=1, description=config.config_id + (f" ({', '.join(bad)})" if bad else ""))

    with progress:
        yield on_start, on_config


def results_table(records: list[Record], title: str = "prefixbench sweep (ms: median [95% CI])") -> Table:
    backends = sorted({backend_label(r.backend, r.device) for r in records})
    table = Table(title=escape(f"{title} - backend {', '.join(backends)}"), show_lines=False)
    for col in ("configuration", "implementation", "status", "forward ms", "backward ms", "extra vs best ms",
                "predicted ms", "stop"):
        table.add_column(col, overflow="fold")
    last = None
    for r in records:
        pred = r.prediction or {}
        cid = r.config.label
        table.add_row(cid if cid != last else "", r.variant,
                      f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]",
                      fmt_stat(r.stat("forward")), fmt_stat(r.stat("backward")), fmt_stat(r.stat("extra_vs_best")),
                      f"{pred['extra_ms_vs_best_predicted']:.3f}" if pred else "-",
                      f"{r.stop_reason or '-'} ({r.repetitions or 0})")
        last = cid
    return table


# --- validate -------------------------------------------------------------------------------------------------

def _validation_cell(record: dict[str, Any]) -> str:
    outcome = record["outcome"]
    details = record["details"]
    text = outcome
    if outcome == "wrong":
        worst = max(details.get("rel_err", {}).items(), key=lambda kv: kv[1], default=None)
        text += f" {worst[0]} {worst[1]:.1e}" if worst else ""
        if details.get("padding_nonzero_rows"):
            text += " pad"
    elif outcome == "unwritten":
        text += " " + " ".join(f"{name}:{format_ranges(rows)}"
                               for name, rows in details.get("unwritten_rows", {}).items())
    if outcome != "ok" and record["expected_to_fail"]:
        return f"[yellow]{escape(text)} (expected)[/yellow]"
    return f"[{OUTCOME_STYLE.get(outcome, 'red')}]{escape(text)}[/]"


def validation_matrix(records: list[dict[str, Any]], variants: Sequence[str], backend: str = "",
                      device: str = "") -> Table:
    """Patterns x variants: each cell the outcome (worst error, unwritten rows), expected failures in yellow."""
    title = "prefixbench validate" + (f" - backend {backend_label(backend, device)}" if backend else "")
    table = Table(title=escape(title), show_lines=False)
    table.add_column("pattern", no_wrap=True)
    table.add_column("prefix / causal", no_wrap=True, overflow="ellipsis", max_width=24)
    for v in variants:
        table.add_column(v, overflow="fold")
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows.setdefault(r["pattern"], {"lens": r, "cells": {}})["cells"][r["variant"]] = r
    for name, row in rows.items():
        lens = row["lens"]
        compact = f"{','.join(map(str, lens['prefix_lens']))} / {','.join(map(str, lens['causal_lens']))}"
        table.add_row(name, compact,
                      *(_validation_cell(row["cells"][v]) if v in row["cells"] else "" for v in variants))
    return table


# --- profile --------------------------------------------------------------------------------------------------

def _breakdown_cell(entry: Optional[dict]) -> str:
    if not entry:
        return "-"
    count = sum(k["count"] for k in entry["kernels"].values())
    return f"{entry['gpu_ms']:.4f} ({count:g})"


def breakdown_table(breakdown: dict) -> Table:
    """Ranges x variants: ms per rep (activities per rep); a difference column for two variants."""
    unit = "ms/rep (kernels)" if breakdown["tool"] != "torch" else "ms/rep (ops or kernels)"
    where = backend_label(breakdown.get("backend"), breakdown.get("device"))
    title = f"prefixbench profile [{breakdown['tool']}, {where}] {breakdown['config']['config_id']} - {unit}"
    table = Table(title=escape(title))
    table.add_column("range")
    variants = breakdown["variants"]
    for name in variants:
        table.add_column(name, justify="right")
    diff = breakdown.get("difference")
    if diff is not None:
        first, second = list(variants)
        table.add_column(f"{second} - {first}", justify="right")
    all_ranges = ordered_ranges(sorted({r for v in variants.values() for r in v["ranges"]}))
    for r in all_ranges:
        row = [r] + [_breakdown_cell(v["ranges"].get(r)) for v in variants.values()]
        if diff is not None:
            row.append(f"{diff.get(r, 0.0):+.4f}")
        table.add_row(*row)
    total = ["total"] + [f"{v['total_gpu_ms']:.4f}" for v in variants.values()]
    if diff is not None:
        total.append(f"{sum(diff.values()):+.4f}")
    table.add_row(*total, style="bold")
    overhead = breakdown.get("nvtx_overhead")
    if overhead:
        amount = (f"below resolution ({overhead.get('resolution_us', 0):.1f} us/rep)" if overhead.get("below_resolution")
                  else f"{overhead['overhead_per_rep_us']:.1f} us/rep ({overhead['overhead_percent']:.2f}%)")
        table.caption = f"NVTX observer overhead ({overhead.get('emitter')}): {amount}"
    return table


# --- compare --------------------------------------------------------------------------------------------------

def compare_table(rows: list, metric: str, base_name: str, new_name: str, threshold: float) -> Table:
    from plots.render import fmt_num
    table = Table(title=f"{metric} median: {new_name} vs {base_name} (threshold {threshold:g}%)")
    for col, justify in (("config", "left"), ("implementation", "left"), ("base ms", "right"), ("new ms", "right"),
                         ("new/base", "right"), ("interval", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        interval = "-" if r.lo is None else f"[{r.lo:.3f}, {r.hi:.3f}]"
        style = VERDICT_STYLE.get(r.verdict, "")
        verdict = escape(r.verdict + (f" ({r.detail})" if r.detail else ""))
        table.add_row(r.config_id, r.variant, fmt_num(r.base_ms), fmt_num(r.new_ms), fmt_num(r.ratio, ".3f"),
                      escape(interval), f"[{style}]{verdict}[/]" if style else verdict)
    return table
