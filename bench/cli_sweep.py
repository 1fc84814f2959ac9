"""`prefixbench sweep`: flags (or a suite file) -> grid -> records in DIR/results.jsonl."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from bench.console import console, results_table, sweep_progress
from bench.distributed import RankInfo
from bench.errors import UserError
from bench.io import read_records
from bench.records import Record
from bench.grid import Suite, check_suite
from bench.sweep import interrupted_message, resolve_target, run_sweep, suite_for_run

CPU_NOTICE = ("prefixbench: no CUDA device: running on the CPU reference backend; "
              "timings are CPU-reference figures, not GPU figures")


def suite_from_flags(suite: Optional[str], **flags) -> tuple[Suite, bool]:
    """The suite file (default: `default`, or `smoke` on a machine without CUDA) with flags applied."""
    return suite_for_run(Path("."), suite, False, **flags)


def dry_run(suite: Suite) -> None:
    configs = suite.configs()
    names = list(suite.variants) + list(suite.peers)
    console.print(f"suite {suite.name}: {len(configs)} configurations x {len(names)} implementations "
                  f"= {len(configs) * len(names)} records; backend={suite.backend} device={suite.device}")
    console.print(f"implementations: {', '.join(names)}")
    for c in configs:
        print(c.config_id)


def register(app: typer.Typer) -> None:
    @app.command()
    def sweep(
        out: Path = typer.Option(Path("runs/sweep"), "--out", help="Directory for results.jsonl and env.json."),
        suite: Optional[str] = typer.Option(None, help="Suite name (bench/suites/*.toml) or path. "
                                                        "Default: 'default' on CUDA, 'smoke' without."),
        variant: List[str] = typer.Option([], "--variant", help="Variant(s) to measure (repeatable)."),
        peer: List[str] = typer.Option([], "--peer", help="Peer implementation(s) to measure (repeatable)."),
        distribution: List[str] = typer.Option([], "--distribution", help="Named, frac:LO-HI, file:PATH (lengths "
                                               "sampled) or batches:PATH (packed batches replayed in order)."),
        columns: Optional[str] = typer.Option(None, "--columns", help="PREFIX,CAUSAL column names of file: "
                                              "distributions (default: prefix_len,causal_len; prefix,causal; "
                                              "prompt_len,response_len)."),
        tokens: List[int] = typer.Option([], "--tokens", help="Tokens per packed batch (repeatable)."),
        heads: List[int] = typer.Option([], "--heads"),
        head_dim: List[int] = typer.Option([], "--head-dim"),
        dtype: List[str] = typer.Option([], "--dtype"),
        seed: Optional[int] = typer.Option(None),
        context: Optional[int] = typer.Option(None, help="Longest sequence a distribution draws."),
        backend: Optional[str] = typer.Option(None, help="auto | fa3 | reference"),
        device: Optional[str] = typer.Option(None, help="auto | cuda | cpu"),
        warmup: Optional[int] = typer.Option(None),
        min_reps: Optional[int] = typer.Option(None),
        max_reps: Optional[int] = typer.Option(None),
        target_rel_ci: Optional[float] = typer.Option(None, help="Stop when every median's 95% CI half-width "
                                                                 "over the median is below this."),
        time_cap: Optional[float] = typer.Option(None, help="Seconds per configuration before stopping anyway."),
        phase_reps: Optional[int] = typer.Option(None, help="Extra rounds with phase events."),
        l2_flush: Optional[bool] = typer.Option(None, "--l2-flush/--no-l2-flush"),
        cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph",
                                                  help="Also time forward+backward replayed as a CUDA graph."),
        resume: bool = typer.Option(False, help="Continue the grid saved in DIR/run.json: measure every "
                                                "configuration not wholly recorded in DIR/results.jsonl."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: measure again the "
                                          "configurations with an error, timeout, oom or crashed record."),
        call_timeout: float = typer.Option(600.0, "--call-timeout", help="Seconds one worker call (a probe, or "
                                           "a configuration's timed rounds) may run before the worker is killed "
                                           "and the record says timeout."),
        dry_run_: bool = typer.Option(False, "--dry-run", help="Print the grid and exit."),
        isolation: str = typer.Option("process", help="process (crash-safe worker) | none"),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ) -> None:
        """Time every variant (and peer) over the grid; crashes are recorded, never fatal."""
        if isolation not in ("process", "none"):
            raise UserError(f"--isolation {isolation!r}: choose process or none")
        if retry_failed and not resume:
            raise UserError("--retry-failed needs --resume")
        the_suite, fallback = suite_for_run(
            out, suite, resume, columns, variants=variant, peers=peer, distributions=distribution, tokens=tokens, heads=heads,
            head_dims=head_dim, dtypes=dtype, seed=seed, context=context, backend=backend, device=device,
            warmup=warmup, min_reps=min_reps, max_reps=max_reps, target_rel_ci=target_rel_ci,
            time_cap_s=time_cap, phase_reps=phase_reps, l2_flush=l2_flush, cuda_graph=cuda_graph)
        check_suite(the_suite)
        if dry_run_:
            dry_run(the_suite)
            return
        target = resolve_target(the_suite.backend, the_suite.device)
        if target.device == "cpu" and RankInfo.from_env().rank == 0:
            console.print(CPU_NOTICE + (" (smoke suite)" if fallback else ""), style="yellow", soft_wrap=True)
        try:
            with sweep_progress(progress) as (on_start, on_config):
                result = run_sweep(the_suite, out, target, resume=resume, isolation=isolation,
                                   on_config=on_config, on_start=on_start, retry_failed=retry_failed,
                                   call_timeout_s=call_timeout)
        except KeyboardInterrupt:
            console.print(interrupted_message(out), style="yellow", soft_wrap=True)
            raise typer.Exit(130) from None
        rank = RankInfo.from_env()
        if rank.rank != 0:
            return                                   # rank 0 prints the merged run
        if rank.distributed:
            result.records = [Record.from_json(r) for r in read_records([result.results_path])]
        if result.skipped_configs:
            console.print(f"resume: skipped {result.skipped_configs} configurations already recorded")
        if result.records:
            console.print(results_table(result.records))
        console.print(f"records: {result.results_path}")
