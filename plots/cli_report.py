"""`prefixbench report` (markdown + html + figures) and `prefixbench compare` (the regression gate)."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from plots.compare import FASTER, METRICS, SLOWER, compare_records
from bench.io import results_path
from plots.records import load_records
from plots.render import fmt_num

VERDICT_STYLE = {FASTER: "green", SLOWER: "bold red", "now failing": "bold red", "fixed": "green"}


def report(dirs: list[Path] = typer.Argument(..., help="Result directories (each holding results.jsonl)."),
           out: Path = typer.Option(..., "--out", "-o", help="Directory for report.md, report.html, figures/.")) -> None:
    """Write OUT/report.md, a self-contained OUT/report.html and OUT/figures/*.png|svg from result directories.

    Exit codes: 0 = written; 2 = bad input (missing results.jsonl, malformed records).
    """
    from plots.report import build_report  # matplotlib is imported only when a report is made

    paths = build_report(dirs, out)
    typer.echo(f"wrote {paths['markdown']}, {paths['html']} and {paths['figures']}/")


def compare(base: Path = typer.Argument(..., help="Baseline: a result directory or its results.jsonl."),
            new: Path = typer.Argument(..., help="Candidate: a result directory or its results.jsonl."),
            threshold: float = typer.Option(5.0, "--threshold", help="Changes smaller than this percentage are 'same'."),
            metric: str = typer.Option("backward", "--metric", help=f"Timing to compare: {' or '.join(METRICS)}.")
            ) -> None:
    """Compare NEW against BASE per (configuration, implementation): ratio new/base of the median.

    Interval: from new.lo/base.hi to new.hi/base.lo (the two confidence intervals propagated).
    Verdict: 'same (within noise)' when the interval holds 1; 'same (within threshold)' when |ratio - 1| < threshold;
    else faster or slower. Ok in BASE but failing in NEW is 'now failing'.

    Exit codes: 0 = nothing slower past the threshold;
    1 = at least one configuration regressed (slower or now failing; named on stdout);
    2 = bad input (missing directory or results.jsonl, bad flags, no common configurations).
    """
    base_path, new_path = results_path(base), results_path(new)
    rows = compare_records(load_records(base_path), load_records(new_path), metric, threshold)
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
    if regressed:
        typer.echo(f"REGRESSION: {len(regressed)} slower than {threshold:g}% past noise or now failing:")
        for r in regressed:
            what = f"x{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]" if r.ratio is not None else r.detail
            typer.echo(f"  {r.config_id} / {r.variant}: {r.verdict} {what}")
        raise typer.Exit(1)
    typer.echo("no regression")


def review(out: Path = typer.Option(..., "--out", "-o", help="Directory for sweep/, validate/, profile/, report/."),
           suite: str = typer.Option(None, "--suite", help="Suite to sweep (default: 'default' on CUDA, 'smoke' "
                                                            "without)."),
           backend: str = typer.Option("auto", help="auto | fa3 | reference"),
           device: str = typer.Option("auto", help="auto | cuda | cpu"),
           nsys: str = typer.Option(None, "--nsys", help="Path to the nsys executable (default: found on PATH)."),
           isolation: str = typer.Option("process", help="process (crash-safe workers) | none")) -> None:
    """The whole review in one command: sweep, validate the PR's variants and ours, nsys-profile
    zeros_always vs guarded_passthrough (when nsys is found), and the report.

    Exit codes: 0 = report written; 2 = bad input.
    """
    from bench.errors import UserError
    from plots.review import run_review

    if isolation not in ("process", "none"):
        raise UserError(f"--isolation {isolation!r}: choose process or none")
    result = run_review(out, suite, backend, device, isolation=isolation, nsys_path=nsys,
                        log=lambda line: typer.echo(line, err=True))
    typer.echo(result.summary, nl=False)
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in result.wall_s.items())
    typer.echo(f"review: {walls}; report {result.report['html']}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("review")(review)
    app.command("compare")(compare)
