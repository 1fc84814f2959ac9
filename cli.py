"""The `prefixbench` command: every subcommand, each a thin call into one driver in the package that owns it.

Results go to stdout (tables, verdicts, --json); progress and notices go to stderr. Tables are drawn by
plots/console.py; the shared options are declared once in cli_options.py.
"""
from __future__ import annotations

import sys

from bench.run import interrupts

with interrupts.while_starting(__name__):        # Ctrl-C during the imports: one line, not an import traceback
    import json
    from pathlib import Path
    from typing import Annotated, List, Optional

    import typer
    try:                                          # typer >= 0.2x carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:
        from click import exceptions as click_errors

    from bench.spec.errors import UserError
    from cli_options import (Backend, Backends, CacheControl, CheckedVariants, ClockControl, Context, Device,
                             Distributions, Dtypes, HeadDims, Heads, Isolation, Json, Metric, OneDtype, Peers,
                             ProfileVariants, Progress, Ranges, Seed, SuiteName, Tokens, Tool, Variants)
    from plots import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Microbenchmarks, profiles and boundary checks for PrefixLM attention (two FA3 passes).")


def _out_dir(value: object) -> Path:
    """An --out value: an empty one would write into the current directory, so it is refused."""
    if isinstance(value, Path):
        return value
    if not str(value).strip():
        raise UserError(f"--out {str(value)!r}: an empty path; name a directory")
    return Path(str(value))


OUT_DIR = {"parser": _out_dir, "metavar": "DIR"}


@app.callback()
def _root() -> None:
    """Subcommands: variants, sweep, profile, validate, report, compare, review, doctor."""


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2))


@app.command()
def variants(as_json: Json = False) -> None:
    """List the op variants (what each allocates, zero-fills and adds, what it survives) and the peers (what each
    needs)."""
    from bench.harness.registry import implementation_listing
    entries = implementation_listing()
    if as_json:
        _print_json(entries)
        return
    console.show(console.implementations_table(entries))


@app.command()
def sweep(
    out: Annotated[Path, typer.Option("--out", **OUT_DIR, help="Directory for results.jsonl and env.json.")] = Path("runs/sweep"),
    suite: SuiteName = None,
    variant: Variants = [],  # noqa: B006 - typer reads the default
    peer: Peers = [],  # noqa: B006
    distribution: Distributions = [],  # noqa: B006
    tokens: Tokens = [],  # noqa: B006
    heads: Heads = [],  # noqa: B006
    head_dim: HeadDims = [],  # noqa: B006
    dtype: Dtypes = [],  # noqa: B006
    seed: Seed = None,
    context: Context = None,
    backend: Backends = [],  # noqa: B006
    device: Device = None,
    warmup: Optional[int] = typer.Option(None),
    min_reps: Optional[int] = typer.Option(None),
    max_reps: Optional[int] = typer.Option(None),
    target_rel_ci: Optional[float] = typer.Option(None, help="Stop when every median's 95% CI half-width "
                                                             "over the median is below this."),
    time_cap: Optional[float] = typer.Option(None, help="Seconds per configuration before stopping anyway."),
    phase_reps: Optional[int] = typer.Option(None, help="Extra rounds with phase events."),
    l2_flush: Optional[bool] = typer.Option(None, "--l2-flush/--no-l2-flush"),
    cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph",
                                              help="Also time forward and backward replayed as CUDA graphs, "
                                                   "in the same interleaved rounds."),
    timing: Optional[str] = typer.Option(None, "--timing",
                                         help="gpu (default on CUDA): each call enqueued behind a stream hold, "
                                              "GPU time only; eager: from an idle queue, host launch time "
                                              "included. gpu mode also times eager in the same rounds; the CPU "
                                              "reference is always eager."),
    block: Optional[bool] = typer.Option(None, "--block/--no-block",
                                         help="Also time each variant inside a transformer block (block:<variant>)."),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the grid saved in DIR/run.json: measure every "
                                         "configuration not wholly recorded in DIR/results.jsonl.")] = False,
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: measure again the "
                                      "configurations with an error, timeout, oom or crashed record."),
    allow_changed_inputs: bool = typer.Option(False, "--allow-changed",
                                              help="With --resume: measure an edited file:/batches: input."),
    call_timeout: float = typer.Option(600.0, "--call-timeout", help="Seconds one worker call may run before the "
                                       "worker is killed and the record says timeout."),
    columns: Optional[str] = typer.Option(None, "--columns", help="PREFIX,CAUSAL column names of file: "
                                          "distributions (default: prefix_len,causal_len; prefix,causal; "
                                          "prompt_len,response_len)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid (configuration ids on stdout) and exit."),
    isolation: Isolation = "process",
    progress: Progress = True,
    as_json: Json = False,
) -> None:
    """Time every variant (and peer) over the grid; crashes are recorded, never fatal."""
    from bench.run.sweep_command import sweep_command
    from bench.spec.grid import GridFlags, TimingFlags
    flags = GridFlags(variants=tuple(variant), peers=tuple(peer), distributions=tuple(distribution),
                      tokens=tuple(tokens), heads=tuple(heads), head_dims=tuple(head_dim), dtypes=tuple(dtype),
                      seed=seed, context=context, backends=tuple(backend), device=device, block=block,
                      timing=TimingFlags(warmup=warmup, min_reps=min_reps, max_reps=max_reps,
                                         target_rel_ci=target_rel_ci, time_cap_s=time_cap, phase_reps=phase_reps,
                                         l2_flush=l2_flush, cuda_graph=cuda_graph, mode=timing))
    with interrupts.naming_kept_records("sweep", out, "results.jsonl") as where:
        with console.sweep_progress(progress and not dry_run) as (on_start, on_config):
            summary = sweep_command(out, suite, flags, resume=resume, dry_run=dry_run, isolation=isolation,
                                    notify=console.notice, on_start=on_start, on_config=on_config,
                                    retry_failed=retry_failed, call_timeout_s=call_timeout, columns=columns,
                                    allow_changed_inputs=allow_changed_inputs,
                                    on_out_dir=lambda path: setattr(where, "out_dir", path))
    if not summary.main_rank:
        return                                       # rank 0 shows the merged run
    if as_json:
        _print_json(summary.as_json())
    elif dry_run:
        for c in summary.configs:
            console.say(c.config_id)
    else:
        if summary.records:                          # the pivot and the verdict over the whole results file
            from bench.results.io import read_records
            from bench.results.records import Record
            from plots.terminal import sweep_summary
            records = [Record.from_json(r) for r in read_records([summary.results_path])]
            console.say(sweep_summary(records).rstrip("\n"))
        console.say(f"records: {summary.results_path} (flat: {summary.results_path.with_name('results.csv')})")


@app.command()
def profile(
    out: Annotated[Path, typer.Option("--out", **OUT_DIR, help="Directory for breakdown.json and the tool's files.")],
    tool: Tool = "auto",
    nsys: Optional[str] = typer.Option(None, "--nsys", help="Path to the nsys executable."),
    ncu: Optional[str] = typer.Option(None, "--ncu", help="Path to the ncu executable."),
    suite: Annotated[Optional[str], typer.Option("--suite", help="Suite name or path (a small one); "
                                                 "default: one configuration.")] = None,
    variant: ProfileVariants = [],  # noqa: B006
    distribution: Distributions = [],  # noqa: B006
    tokens: Tokens = [],  # noqa: B006
    heads: Heads = [],  # noqa: B006
    head_dim: HeadDims = [],  # noqa: B006
    dtype: Dtypes = [],  # noqa: B006
    seed: Seed = None,
    context: Context = None,
    backend: Backend = None,
    device: Device = None,
    reps: int = typer.Option(5, help="Measured repetitions per variant."),
    warmup: int = typer.Option(2, help="Unrecorded repetitions per variant first."),
    overhead_reps: Optional[int] = typer.Option(None, help="Reps for the NVTX overhead figure "
                                                           "(0: skip; default 20 on CUDA, 2 on CPU)."),
    range_: Ranges = [],  # noqa: B006
    clock_control: ClockControl = "base",
    cache_control: CacheControl = "all",
) -> None:
    """Attribute device time to the op's phases (NVTX / record_function ranges), per variant."""
    from profiles.profile_command import profile_command

    def shown(path: Path, breakdown: dict) -> None:
        console.show(console.breakdown_table(breakdown))
        console.say(f"breakdown: {path}")

    axes = {"distributions": distribution, "tokens": tokens, "heads": heads, "head_dims": head_dim,
            "dtypes": dtype, "seed": seed, "context": context, "backend": backend, "device": device}
    profile_command(out, tool, nsys, ncu, suite, variant, axes, reps, warmup, overhead_reps, range_,
                    clock_control, cache_control, on_breakdown=shown, notify=console.notice)


@app.command()
def validate(
    out: Annotated[Path, typer.Option("--out", **OUT_DIR, help="Directory for validation.jsonl, validation_summary.json, "
                                                    "contract_probes.json.")],
    variant: CheckedVariants = None,
    backend: Backend = None,
    device: Device = None,
    dtype: OneDtype = None,
    heads: Optional[int] = typer.Option(None, min=1, help="Attention heads (default 2)."),
    head_dim: Optional[int] = typer.Option(None, min=1, help="Head dimension (default 64)."),
    random_count: Optional[int] = typer.Option(None, "--random", min=0, help="Random patterns added to the "
                                               "catalogue (default 20)."),
    seed: Optional[int] = typer.Option(None, help="Seed for random patterns and tensors (default 0)."),
    patterns_file: Optional[Path] = typer.Option(None, "--patterns", help="Extra patterns: .json/.jsonl/.csv with "
                                                 "name, prefix_lens, causal_lens[, token_budget]."),
    isolation: Isolation = "process",
    probes: bool = typer.Option(True, "--probes/--no-probes", help="Also run the kernel contract probes."),
    spare_workers: Optional[int] = typer.Option(None, min=0, help="Pre-started spare workers (process isolation): "
                                                "an expected crash swaps one in instead of waiting for a fresh "
                                                "start. Default: 8 on CUDA (a fresh context + FA3 load takes "
                                                "seconds), 3 on CPU."),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the settings saved in DIR/validate.json: "
                                                          "keep the cases already in DIR/validation.jsonl and run "
                                                          "the rest (a flag that changes them is refused).")] = False,
    as_json: Json = False,
) -> None:
    """Check every variant on every boundary pattern against the dense reference, with poisoned buffers.

    Exit codes:

    0 = every recommended variant is ok on every pattern, and no variant gives a silent wrong answer
    (wrong or unwritten); crashes of non-recommended variants are reported, not failures.

    1 = a recommended variant is not ok somewhere, or some variant is wrong/unwritten.

    2 = bad input (flags, patterns file).
    """
    from bench.run.validate_command import validate_command
    with interrupts.naming_kept_records("validate", out, "validation.jsonl"):
        result = validate_command(out, variant, backend, device, dtype, heads, head_dim, random_count, seed,
                                  patterns_file, isolation, probes, spare_workers, resume, notify=console.notice)
    if as_json:
        _print_json(result.as_json())
        raise typer.Exit(0 if result.passed else 1)
    console.show(console.validation_matrix(result.records, result.names, result.backend, result.device))
    if result.probes is not None:
        verdict = ("match the contract" if result.probes["all_match_contract"]
                   else "[bold red]DIFFER from the contract[/]")
        console.show(f"contract probes ({', '.join(result.probe_backends)}): rows written {verdict}")
    for line in result.summary["failures"]:
        console.show(f"[bold red]FAIL[/] {line}")
    verdict = "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    console.show(f"{verdict} ({result.summary['cases']} cases; records in {out / 'validation.jsonl'})")
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def report(dirs: List[Path] = typer.Argument(..., help="Result directories (each holding results.jsonl)."),
           out: Path = typer.Option(..., "--out", "-o", **OUT_DIR, help="Directory for report.md, report.html, figures/."),
           layers: int = typer.Option(32, "--layers", help="Layers of the stated model for the per-step answer."),
           study: Optional[Path] = typer.Option(None, "--study", help="Study file naming the variants' roles "
                                                "(default: bench/suites/studies/guard_pr.toml).")) -> None:
    """Write OUT/report.md, a self-contained OUT/report.html and OUT/figures/*.png|svg from result directories.

    Several runs of one configuration: each PR delta comes from the settled one (named in the report).
    Exit codes: 0 = written; 2 = bad input (missing results.jsonl, malformed records).
    """
    from bench.spec.study import load_study
    from plots.report import build_report  # matplotlib is imported only when a report is made
    paths = build_report(dirs, out, layers=layers, study=load_study(study))
    console.say(f"wrote {paths['markdown']}, {paths['html']} and {paths['figures']}/")


@app.command()
def compare(base: Path = typer.Argument(..., help="Baseline: a result directory or its results.jsonl."),
            new: Path = typer.Argument(..., help="Candidate: a result directory or its results.jsonl."),
            threshold: float = typer.Option(5.0, "--threshold", help="Changes smaller than this percentage are 'same'."),
            metric: Metric = "backward",
            as_json: Json = False,
            allow_missing: bool = typer.Option(False, "--allow-missing", help="Exit 0/1 even when NEW lacks "
                                               "configurations or implementations that BASE has."),
            allow_mixed: bool = typer.Option(False, "--allow-mixed", help="Compare runs from different GPUs, "
                                             "backends or devices.")) -> None:
    """Compare NEW against BASE per (configuration, implementation): ratio new/base of the median.

    Interval: from new.lo/base.hi to new.hi/base.lo (the two confidence intervals propagated).
    Verdict: 'same (within noise)' when the interval holds 1; 'same (within threshold)' when |ratio - 1| < threshold;
    else faster or slower. Ok in BASE but failing in NEW is 'now failing'.

    Exit codes: 0 = nothing slower past the threshold;
    1 = at least one configuration regressed (slower or now failing; named on stdout);
    2 = bad input (missing directory or results.jsonl, bad flags, no common configurations, runs from
    different GPUs, backends or devices without --allow-mixed);
    3 = NEW lacks configurations or implementations that BASE has (listed), without --allow-missing.
    """
    from plots.compare import compare_paths
    result = compare_paths(base, new, metric, threshold, allow_mixed)
    regressed = result.regressed
    if as_json:
        _print_json(result.as_json())
        raise typer.Exit(result.exit_code(allow_missing))
    console.show(console.compare_table(result.rows, metric, result.base_path.parent.name,
                                       result.new_path.parent.name, threshold), min_width=140)
    console.say("summary: " + ", ".join(f"{n} {v}" for v, n in result.counts().items()))
    for line in result.notes():
        console.say(line)
    if regressed:
        console.say(f"REGRESSION: {len(regressed)} slower than {threshold:g}% past noise or now failing:")
        for r in regressed:
            what = f"x{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]" if r.ratio is not None else r.detail
            console.say(f"  {r.config_id} / {r.variant}: {r.verdict} {what}")
        raise typer.Exit(1)
    if result.exit_code(allow_missing):
        console.say("MISSING: NEW lacks data BASE has (listed above); pass --allow-missing to accept a partial run")
        raise typer.Exit(result.exit_code(allow_missing))
    console.say("no regression")


@app.command()
def review(out: Annotated[Path, typer.Option("--out", "-o", **OUT_DIR, help="Directory for sweep/, validate/, profile/, "
                                                                 "report/ and review.json.")],
           suite: SuiteName = None,
           backend: Backend = "auto",
           device: Device = "auto",
           nsys: Optional[str] = typer.Option(None, "--nsys", help="Path to the nsys executable (default: on PATH)."),
           isolation: Isolation = "process",
           layers: int = typer.Option(32, "--layers", help="Layers of the stated model for the per-step answer."),
           settle_budget: float = typer.Option(60.0, "--settle-budget", help="Seconds, all together, to settle "
                                               "the PR deltas the sweep left wide."),
           study: Optional[Path] = typer.Option(None, "--study", help="Study file naming the variants' roles.")) -> None:
    """The whole review in one command: sweep the suite, settle the PR deltas it left wide, validate every
    variant of the study (the unguarded one included), nsys-profile the study's pair (when nsys is found;
    a note when not), write the report, and print the wall time of each stage (DIR/stage_times.json).

    Exit codes: 0 = report written; 2 = bad input.
    """
    from bench.spec.study import load_study
    from bench.run.review import run_review
    from plots.report import build_report
    from plots.terminal import sweep_summary
    result = run_review(out, suite, backend, device, isolation=isolation, nsys_path=nsys, log=console.notice,
                        layers=layers, settle_budget_s=settle_budget, study=load_study(study),
                        report_fn=build_report, summary_fn=sweep_summary)
    console.say(result.summary.rstrip("\n"))
    console.say(f"review: report {result.report['html']}")
    console.say(result.stage_times())


@app.command()
def doctor(out: Path = typer.Option(Path("runs"), "--out", **OUT_DIR,
                                    help="Folder a sweep would write to (checked for write access).")) -> None:
    """Can a GPU sweep run here? One line per check: ok, or the fix. Exit 0 only if it can."""
    from profiles.doctor import diagnose, format_check, verdict_line
    checks, can_sweep = diagnose(out)
    for check in checks:
        console.say(format_check(check))
    console.say(verdict_line(can_sweep))
    raise typer.Exit(0 if can_sweep else 1)


def _user_errors() -> tuple[type[BaseException], ...]:
    """UserError, and the op's InvalidLengths once the op is loaded (it cannot be raised before)."""
    metadata = sys.modules.get("prefixlm_attn.metadata")
    return (UserError,) + ((metadata.InvalidLengths,) if metadata is not None else ())


def _bad_value_message(exc: click_errors.UsageError) -> Optional[str]:
    """'--tokens '1e12': input should be a valid integer' for a value typer's validation refused (its message
    alone does not show the value)."""
    errors = getattr(exc.__cause__, "errors", None)
    param = getattr(exc, "param", None)
    if not callable(errors) or param is None:
        return None
    try:
        first = errors()[0]
        value, why = first["input"], first["msg"]
    except (Exception,):  # noqa: BLE001 - another validation library's shape: keep click's message
        return None
    flag = param.opts[0] if getattr(param, "opts", None) else param.name
    return f"{flag} {str(value)!r}: {why[:1].lower()}{why[1:]}"


def usage_line(exc: click_errors.UsageError) -> str:
    """Click's usage error (a missing option, an unknown flag, a value out of range) as one line."""
    command = " ".join(exc.ctx.command_path.split()[1:]) if exc.ctx is not None else ""
    message = _bad_value_message(exc) or " ".join(exc.format_message().split())
    if command:
        return f"prefixbench: error: {command}: {message} (see prefixbench {command} --help)"
    return f"prefixbench: error: {message} (see prefixbench --help)"


def run(args: Optional[List[str]] = None) -> int:
    """Run one command line and return its exit code: user errors (bad flags, values, files) are one line
    on stderr and 2; SIGINT / SIGTERM are one line and 130 / 143; never a traceback."""
    try:
        code = app(args=args, prog_name="prefixbench", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except interrupts.Interrupted as exc:
        print(exc.line or f"prefixbench: {exc.what}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the kinds `_one_line` knows; anything else is raised again
        return _one_line(exc)


def _one_line(exc: Exception) -> int:
    """The exit code of an error `run` knows, after its one line on stderr; other errors are raised again."""
    if isinstance(exc, _user_errors()):
        print(f"prefixbench: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, getattr(click_errors, "NoArgsIsHelpError", ())):     # bare `prefixbench`: help shown
        return exc.exit_code
    if isinstance(exc, click_errors.UsageError):
        print(usage_line(exc), file=sys.stderr)
        return 2
    if isinstance(exc, typer.Abort):                   # end of input at a prompt
        print("prefixbench: aborted", file=sys.stderr)
        return 1
    if isinstance(exc, BrokenPipeError):               # `prefixbench ... | head`
        return 1
    if isinstance(exc, OSError):                       # the machine said no (disk, permissions): one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"prefixbench: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    raise exc


def main() -> None:
    """Entry point (the `prefixbench` script and `python -m cli`): signals raise `Interrupted` from here on."""
    interrupts.install()
    code = run()
    interrupts.ignore_from_now()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(code)


if __name__ == "__main__":
    main()
