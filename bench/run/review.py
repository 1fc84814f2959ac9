"""`prefixbench review --out DIR`: the whole review of the PR in one command, each stage timed.

    DIR/sweep       the suite's sweep (default suite; `smoke` on the CPU reference), every configuration at
                    the suite's short time cap (the pair's long wait moves to the settle stage)
    DIR/settle/tN   the study's pair alone, side by side, for every configuration whose delta did not
                    settle in the sweep (as `--suite pr_delta` runs it), within a stated budget
    DIR/validate    the boundary matrix of every variant the study names, the unguarded one included
    DIR/profile     nsys: the study's pair on one configuration (when nsys is found)
    DIR/report      report.md / report.html / figures from all of them (the settled run of each delta)
    DIR/review.json what ran and the notes; DIR/stage_times.json the wall time of each stage

It strings the existing drivers together (run_sweep, run_validation, profile_config, build_report);
each stage's own command gives the same files.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from bench.spec.grid import Config, Suite, load_suite
from bench.harness.registry import check_suite
from bench.results.io import read_records, write_json
from bench.harness.patterns import catalogue, random_patterns
from bench.results.records import Record
from bench.spec.study import MIN_PAIRS, SETTLED_REL_CI, Study, load_study
from bench.run.sweep import Target, resolve_run_target, run_sweep, suite_from_flags
from bench.harness.validate import run_validation, summarize
from bench.results.derived import paired_difference

DEFAULT_LAYERS = 32
ReportFn = Callable[..., dict]          # plots.report.build_report(dirs, out, extra_notes=, layers=, study=)
SummaryFn = Callable[[list, list], str]  # plots.terminal.sweep_summary(records, validation)

PROFILE_DISTRIBUTION = "sft_long_prompt"      # the SFT case the PR is about
RANDOM_PATTERNS = 3          # 19 named + 3 random = the 22-pattern boundary matrix; `validate --random N` for more
SETTLE_SUITE = "pr_delta"    # how the pair is settled: its timing options (side by side, watched pair)
SETTLE_BUDGET_S = 60.0       # the settle stage's stated budget, all configurations together
SETTLE_MIN_CAP_S = 4.0       # no configuration gets less than this (fewer rounds than pairs an interval needs)
SPARE_WORKERS = 2            # validate: warm workers kept beside the current one (a crash swaps one in)


@dataclass
class ReviewResult:
    out: Path
    wall_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    validation_passed: Optional[bool] = None
    report: dict[str, Path] = field(default_factory=dict)
    summary: str = ""
    settled_dirs: list[Path] = field(default_factory=list)

    def stage_times(self) -> str:
        """One line per stage and the total, for the end of the run."""
        width = max((len(k) for k in self.wall_s), default=5)
        lines = [f"  {k.ljust(width)}  {v:6.1f} s" for k, v in self.wall_s.items()]
        return "\n".join(["stage times:"] + lines + [f"  {'total'.ljust(width)}  {sum(self.wall_s.values()):6.1f} s"])


def profile_config_for(suite: Suite) -> Config:
    """The configuration to profile: the SFT distribution at the suite's largest token budget (else the first)."""
    configs = suite.configs()
    sft = [c for c in configs if c.distribution == PROFILE_DISTRIBUTION] or configs
    return max(sft, key=lambda c: c.tokens)


def _profile(out: Path, suite: Suite, target: Target, nsys_path: Optional[str], study: Study) -> Optional[str]:
    """nsys profile of the study's pair; returns a one-line note when it cannot run."""
    from profiles.profile_command import profile_config
    from profiles.nsys import find_nsys
    if target.device != "cuda":
        return "no nsys profile: the review ran on the CPU (nsys profiles CUDA kernels)."
    exe = find_nsys(nsys_path)
    if exe is None:
        return "no nsys profile: Nsight Systems (nsys) was not found on PATH."
    config = profile_config_for(suite)
    try:
        profile_config("nsys", exe, config, [study.baseline, study.merged], target, out, reps=5, warmup=2,
                       overhead_reps=20, ranges=[])
    except Exception as exc:  # noqa: BLE001 - a failed profile is a note in the report, not a lost review
        return f"no nsys profile: profiling {config.config_id} failed ({type(exc).__name__}: {str(exc)[:200]})."
    return None


def unsettled_configs(records: list[Record], study: Study) -> list[tuple[str, int]]:
    """(distribution, tokens) of every GPU configuration whose paired delta baseline - merged has not
    settled: too few pairs of rounds, or a 95% CI wider than +-SETTLED_REL_CI of itself."""
    pairs: dict[str, dict[str, Record]] = {}
    for r in records:
        if r.ok and r.variant in (study.baseline, study.merged) and r.backend != "reference" and r.device != "cpu":
            pairs.setdefault(r.config_id, {})[r.variant] = r
    out = []
    for recs in pairs.values():
        a, b = recs.get(study.baseline), recs.get(study.merged)
        if a is None or b is None:
            continue
        sa, sb = (a.samples_ms or {}).get("backward"), (b.samples_ms or {}).get("backward")
        if not sa or not sb:
            continue
        stat = paired_difference(sa, sb)
        if stat.n < MIN_PAIRS or stat.rel_ci > SETTLED_REL_CI:
            out.append((a.distribution, a.tokens))
    return out


def settle_suites(base: Suite, todo: list[tuple[str, int]], study: Study, budget_s: float) -> list[Suite]:
    """One suite per token budget: the study's pair on the unsettled distributions, with the settle
    suite's timing and each configuration's cap cut so all of them fit `budget_s`."""
    if not todo:
        return []
    settle = load_suite(SETTLE_SUITE)
    cap = max(SETTLE_MIN_CAP_S, budget_s / len(todo))
    timing = replace(settle.timing, watch_pairs=((study.baseline, study.merged),),
                     time_cap_s=min(settle.timing.time_cap_s, cap),
                     time_cap_long_s=min(settle.timing.cap_for(settle.timing.long_tokens), cap))
    by_tokens: dict[int, list[str]] = {}
    for dist, tokens in todo:
        by_tokens.setdefault(tokens, []).append(dist)
    return [replace(base, name=f"{SETTLE_SUITE}_t{tokens}", variants=(study.baseline, study.merged), peers=(),
                    distributions=tuple(dists), tokens=(tokens,), block=False, timing=timing)
            for tokens, dists in sorted(by_tokens.items())]


def run_review(out: str | Path, suite: Optional[str] = None, backend: str = "auto", device: str = "auto",
               isolation: str = "process", nsys_path: Optional[str] = None, profile: bool = True,
               log: Callable[[str], None] = print, layers: int = DEFAULT_LAYERS,
               settle_budget_s: float = SETTLE_BUDGET_S, study: Optional[Study] = None,
               report_fn: Optional[ReportFn] = None, summary_fn: Optional[SummaryFn] = None,
               **overrides: object) -> ReviewResult:
    """Sweep, settle, validate, profile and report into OUT; returns what ran and how long each stage took.

    `report_fn` / `summary_fn` come from the caller (the CLI passes plots.report.build_report and
    plots.terminal.sweep_summary): the run floor does not import the printers above it. Without
    report_fn there is no report stage. `overrides` narrow the suite as the sweep's flags do.
    """
    out = Path(out)
    study = study or load_study()
    result = ReviewResult(out)
    the_suite, _ = suite_from_flags(suite, backend=backend, device=device, **overrides)
    if "time_cap_long_s" not in overrides and the_suite.timing.watch_pairs:
        # the sweep need not wait for the watched pair at long sequences with every implementation in the
        # rounds: the settle stage times the pair alone, which is what settles it
        the_suite = replace(the_suite, timing=replace(the_suite.timing, time_cap_long_s=0.0))
    check_suite(the_suite)
    target = resolve_run_target(the_suite.backends, the_suite.device)   # validate and profile: the first
    if target.device == "cpu":
        result.notes.append("CPU reference backend: the review checks the pipeline, not GPU speed.")

    def stage(name: str, fn: Callable[[], object]) -> object:
        log(f"review: {name} ...")
        start = time.perf_counter()
        value = fn()
        result.wall_s[name] = round(time.perf_counter() - start, 1)
        log(f"review: {name} done in {result.wall_s[name]:.1f} s")
        return value

    sweep = stage("sweep", lambda: run_sweep(the_suite, out / "sweep", target, isolation=isolation))
    todo = unsettled_configs(sweep.records, study)
    suites = settle_suites(the_suite, todo, study, settle_budget_s)

    def settle() -> None:
        for s in suites:
            d = out / "settle" / s.name.rsplit("_", 1)[-1]
            run_sweep(s, d, target, isolation=isolation)
            result.settled_dirs.append(d)

    if suites:
        stage("settle", settle)
        result.notes.append(f"settle: {len(todo)} unsettled PR deltas re-measured side by side "
                            f"({SETTLE_SUITE} timing, {settle_budget_s:g} s budget): "
                            + ", ".join(f"{d} {t}" for d, t in todo) + ".")
    dtype = "bfloat16" if target.device == "cuda" else "float32"
    patterns = catalogue() + random_patterns(the_suite.seed, RANDOM_PATTERNS)
    records = stage("validate", lambda: run_validation(list(study.variants), patterns, target.backend,
                                                       target.device, dtype, out / "validate",
                                                       seed=the_suite.seed, isolation=isolation,
                                                       spare_workers=SPARE_WORKERS if target.device == "cuda"
                                                       else 1))
    result.validation_passed = summarize(records)["passed"]
    dirs = [out / "sweep", *result.settled_dirs, out / "validate"]
    if profile:
        note = stage("profile", lambda: _profile(out / "profile", the_suite, target, nsys_path, study))
        if note:
            result.notes.append(note)
            log(f"review: {note}")
        elif (out / "profile" / "breakdown.json").is_file():
            dirs.append(out / "profile")
    if report_fn is not None:
        result.report = stage("report", lambda: report_fn(dirs, out / "report", extra_notes=result.notes,
                                                          layers=layers, study=study))
    write_json(out / "stage_times.json", {"wall_s": result.wall_s, "total_s": round(sum(result.wall_s.values()), 1)},
               indent=1, newline=True)
    write_json(out / "review.json", {"suite": the_suite.name, "backend": target.backend, "device": target.device,
                                     "study": study.name, "layers": layers, "settle_budget_s": settle_budget_s,
                                     "wall_s": result.wall_s, "notes": result.notes,
                                     "validation_passed": result.validation_passed,
                                     "directories": [str(d) for d in dirs]}, indent=1, newline=True)
    validation = [json.loads(line) for line in (out / "validate" / "validation.jsonl").read_text().splitlines()
                  if line.strip()]
    recs = [Record.from_json(r) for r in read_records([out / "sweep" / "results.jsonl"])]
    result.summary = summary_fn(recs, validation) if summary_fn is not None else ""
    return result
