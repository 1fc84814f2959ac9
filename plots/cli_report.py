"""`prefixbench report` (markdown + html + figures) and `prefixbench compare` (the regression gate)."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from plots.compare import (EXIT_MISSING, EXIT_REGRESSION, FASTER, METRICS, SLOWER, compare_records, coverage,
                           setup_differences)
from bench.errors import UserError
from bench.io import make_out_dir, read_json_object, results_path
from plots.records import load_records
from plots.render import fmt_num

VERDICT_STYLE = {FASTER: "green", SLOWER: "bold red", "now failing": "bold red", "fixed": "green"}


def report(dirs: list[Path] = typer.Argument(..., help="Result directories (each holding results.jsonl)."),
           out: Path = typer.Option(..., "--out", "-o", help="Directory for report.md, report.html, figures/.")) -> None:
    """Write OUT/report.md, a self-contained OUT/report.html and OUT/figures/*.png|svg from result directories.

    Exit codes: 0 = written; 2 = bad input (missing results.jsonl, malformed records).
    """
    from plots.report import build_report  # matplotlib is imported only when a report is made

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file of that name exists (the report needs a directory)")
    make_out_dir(out)

    paths = build_report(dirs, out)
    typer.echo(f"wrote {paths['markdown']}, {paths['html']} and {paths['figures']}/")


def compare(base: Path = typer.Argument(..., help="Baseline: a result directory or its results.jsonl."),
            new: Path = typer.Argument(..., help="Candidate: a result directory or its results.jsonl."),
            threshold: float = typer.Option(5.0, "--threshold", help="Changes smaller than this percentage are 'same'."),
            metric: str = typer.Option("backward", "--metric", help=f"Timing to compare: {' or '.join(METRICS)}."),
            allow_missing: bool = typer.Option(False, "--allow-missing", help="Exit 0/1 even when NEW lacks "
                                               "configurations or implementations that BASE has."),
            allow_mixed: bool = typer.Option(False, "--allow-mixed", help="Compare runs from different GPUs, "
                                             "backends or devices.")
            ) -> None:
    """Compare NEW against BASE per (configuration, implementation): ratio new/base of the median.

    Interval: from new.lo/base.hi to new.hi/base.lo (the two confidence intervals propagated).
    Verdict: 'same (within noise)' when the interval holds 1; 'same (within threshold)' when |ratio - 1| < threshold;
    else faster or slower. Ok in BASE but failing in NEW is 'now failing'.

    Exit codes: 0 = nothing slower past the threshold;
    1 = at least one configuration regressed (slower or now failing; named on stdout);
    2 = bad input (missing directory or results.jsonl, bad flags, no common configurations, runs from
    different GPUs, backends or devices without --allow-mixed);
    3 = NEW lacks configurations or implementations that BASE has (listed), without --allow-missing
    (a regression, exit 1, takes precedence).
    """
    base_path, new_path = results_path(base), results_path(new)
    base_records, new_records = load_records(base_path), load_records(new_path)
    mixed = setup_differences(base_records, new_records, read_json_object(base_path.parent / "env.json"),
                              read_json_object(new_path.parent / "env.json"))
    if mixed and not allow_mixed:
        raise UserError(f"BASE and NEW were measured differently ({'; '.join(mixed)}); "
                        "pass --allow-mixed to compare them anyway")
    rows = compare_records(base_records, new_records, metric, threshold)
    cov = coverage(base_records, new_records)
    table = Table(title=f"{metric} median: {new_path.parent.name} vs {base_path.parent.name} "
                        f"(threshold {threshold:g}%)")
    for col, justify in (("config", "left"), ("implementation", "left"), ("base ms", "right"), ("new ms", "right"),
                         ("new/base", "right"), ("interval", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        interval = "-" if r.lo is None else f"[{r.lo:.3f}, {r.hi:.3f}]"
        style = VERDICT_STYLE.get(r.verdict, "")
        verdict = r.verdict + (f" ({r.detail})" if r.detail else "")
        table.add_row(r.config_id, r.variant, fmt_num(r.base_ms), fmt_num(r.new_ms), fmt_num(r.ratio, ".3f"), interval,
                      f"[{style}]{verdict}[/]" if style else verdict)
    console = Console(width=max(Console().width, 140))
    console.print(table)
    regressed = [r for r in rows if r.regressed]
    counts = {v: sum(r.verdict == v for r in rows) for v in dict.fromkeys(r.verdict for r in rows)}
    typer.echo("summary: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    for line in (f"mixed runs (--allow-mixed): {m}" for m in mixed):
        typer.echo(line)
    for line in cov.lines():
        typer.echo(line)
    if regressed:
        typer.echo(f"REGRESSION: {len(regressed)} slower than {threshold:g}% past noise or now failing:")
        for r in regressed:
            what = f"x{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]" if r.ratio is not None else r.detail
            typer.echo(f"  {r.config_id} / {r.variant}: {r.verdict} {what}")
        raise typer.Exit(EXIT_REGRESSION)
    if cov.new_lacks and not allow_missing:
        typer.echo("MISSING: NEW lacks data BASE has (listed above); pass --allow-missing to accept a partial run")
        raise typer.Exit(EXIT_MISSING)
    typer.echo("no regression")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
