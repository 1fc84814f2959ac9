"""What the sweep shows a person: a progress bar with ETA while it runs, a results table at the end."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.grid import Config
from bench.records import Record
from bench.stats import Stat

console = Console(stderr=True)
if not console.is_terminal and "COLUMNS" not in __import__("os").environ:
    console.width = 160            # logs and CI: do not wrap tables at 80 columns
STATUS_STYLE = {"ok": "green", "crashed": "bold red", "oom": "magenta", "error": "red", "skipped": "yellow"}


def fmt_stat(stat: Stat | None) -> str:
    if not stat:
        return "-"
    return f"{stat.median:.3f} [{stat.lo:.3f}, {stat.hi:.3f}]"


@contextmanager
def sweep_progress(enabled: bool = True) -> Iterator[tuple]:
    """Yields (on_start, on_config) hooks for `run_sweep`."""
    progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
                        console=console, disable=not enabled)
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
    table = Table(title=title, show_lines=False)
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
