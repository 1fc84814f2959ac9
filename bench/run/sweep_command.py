"""The `sweep` driver: flags (or a suite file) -> grid -> records in DIR/results.jsonl -> a summary.

It prints nothing itself: notices go through `notify`, progress through the hooks, and the caller
shows the returned records (tables live in plots/console.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.run.distributed import RankInfo
from bench.spec.grid import Config, GridFlags, Suite
from bench.harness.registry import check_suite
from bench.harness.target import auto_notice
from bench.results.io import read_records
from bench.results.records import Record
from bench.spec.errors import UserError
from bench.run.runstate import rerun_target
from bench.spec.packing import budget_notice
from bench.run.sweep import ProgressHook, Target, resolve_run_target, run_sweep, suite_for_run

CPU_NOTICE = ("prefixbench: no CUDA device: running on the CPU reference backend; "
              "timings are CPU-reference figures, not GPU figures")


@dataclass
class SweepSummary:
    suite: Suite
    configs: list[Config]
    names: list[str]
    target: Optional[Target] = None              # None on a dry run
    records: list[Record] = field(default_factory=list)
    skipped_configs: int = 0
    results_path: Optional[Path] = None
    main_rank: bool = True                       # only rank 0 shows the (merged) run

    def as_json(self) -> dict:
        """The run for machines: where its records are and one line per record."""
        return {"suite": self.suite.name, "results": str(self.results_path) if self.results_path else None,
                "backend": self.target.backend if self.target else self.suite.backend,
                "backends": list(self.target.backends if self.target else self.suite.backends),
                "device": self.target.device if self.target else self.suite.device,
                "configurations": [c.config_id for c in self.configs], "implementations": self.names,
                "skipped_configs": self.skipped_configs,
                "records": [{"config_id": r.config_id, "variant": r.variant, "status": r.status,
                             "forward_ms": r.median("forward"), "backward_ms": r.median("backward"),
                             "stop_reason": r.stop_reason} for r in self.records]}


def budget_notices(configs: list[Config]) -> list[str]:
    """One line per (user file, token budget) whose file holds rows the budget cannot place."""
    pairs = dict.fromkeys((c.distribution, c.tokens) for c in configs if c.distribution.startswith("file:"))
    return [line for d, t in pairs if (line := budget_notice(d, t)) is not None]


def plan_line(suite: Suite, configs: list[Config], names: list[str]) -> str:
    return (f"suite {suite.name}: {len(configs)} configurations x {len(names)} implementations "
            f"= {len(configs) * len(names)} records; backend={','.join(suite.backends)} device={suite.device}")


def sweep_command(out: Path, suite: Optional[str], flags: GridFlags, *, resume: bool = False, dry_run: bool = False,
                  isolation: str = "process", notify: Callable[[str], None] = print,
                  on_start: Optional[Callable[[int], None]] = None,
                  on_config: Optional[ProgressHook] = None, retry_failed: bool = False,
                  call_timeout_s: float = 600.0, columns: Optional[str] = None,
                  allow_changed_inputs: bool = False,
                  on_out_dir: Optional[Callable[[Path], None]] = None) -> SweepSummary:
    """Time every variant (and peer) over the grid; crashes are recorded, never fatal. With --resume the
    grid saved in `out` is continued (flags that would change it are refused). Without it, a directory
    that already holds records is continued when its grid is the same, else the run goes to a fresh
    timestamped sibling (said on stderr; `on_out_dir` hears the directory written)."""
    if retry_failed and not resume:
        raise UserError("--retry-failed needs --resume")
    the_suite, fallback = suite_for_run(out, suite, resume and not dry_run, flags, columns)
    check_suite(the_suite)
    names = the_suite.implementations()
    summary = SweepSummary(the_suite, the_suite.configs(), names)
    for line in budget_notices(summary.configs):
        notify(line)
    if dry_run:
        notify(plan_line(the_suite, summary.configs, names))
        notify(f"implementations: {', '.join(names)}")
        return summary
    rank = RankInfo.from_env()
    if not resume and not rank.distributed and _holds_records(out):
        out, resume, line = rerun_target(out, the_suite)
        notify(line)
        if on_out_dir:
            on_out_dir(out)
    summary.target = resolve_run_target(the_suite.backends, the_suite.device)
    if (picked := auto_notice(the_suite.backends, summary.target)) and rank.rank == 0:
        notify(picked)
    if summary.target.device == "cpu" and rank.rank == 0:
        notify(CPU_NOTICE + (" (smoke suite)" if fallback else ""))
    result = run_sweep(the_suite, out, summary.target, resume=resume, isolation=isolation,
                       on_config=on_config, on_start=on_start, retry_failed=retry_failed,
                       call_timeout_s=call_timeout_s, allow_changed_inputs=allow_changed_inputs, notify=notify)
    summary.results_path, summary.skipped_configs = result.results_path, result.skipped_configs
    summary.main_rank = rank.rank == 0
    summary.records = result.records
    if rank.distributed and summary.main_rank:
        summary.records = [Record.from_json(r) for r in read_records([result.results_path])]
    if result.skipped_configs and summary.main_rank:
        left = "" if result.records else "; nothing left to measure"
        notify(f"resume: skipped {result.skipped_configs} configurations already recorded{left}")
    return summary


def _holds_records(out: Path) -> bool:
    results = Path(out) / "results.jsonl"
    return results.is_file() and results.stat().st_size > 0
