"""`prefixbench review --out DIR`: the whole review of the guard PR in one command.

    DIR/sweep     the suite's sweep (default suite; `smoke` on the CPU reference)
    DIR/validate  the boundary matrix of the PR's variants and ours, with poisoned buffers
    DIR/profile   nsys: zeros_always vs guarded_passthrough on one configuration (when nsys is found)
    DIR/report    report.md / report.html / figures from the three
    DIR/review.json  what ran, the wall time of each step, and the notes

It only strings the existing drivers together (run_sweep, run_validation, profile_config,
build_report); each step's own command gives the same files.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.spec.grid import Config, Suite
from bench.harness.registry import check_suite
from bench.results.io import read_records, write_json
from bench.harness.patterns import catalogue, random_patterns
from bench.results.records import Record
from bench.run.sweep import Target, resolve_target, run_sweep, suite_from_flags
from bench.harness.validate import run_validation, summarize
from plots.report import build_report
from plots.terminal import sweep_summary

VALIDATE_VARIANTS = ("zeros_always", "guarded_zero_fill", "guarded_passthrough", "prefix_rows_add")
PROFILE_VARIANTS = ("zeros_always", "guarded_passthrough")
PROFILE_DISTRIBUTION = "sft_long_prompt"      # the SFT case the PR is about
RANDOM_PATTERNS = 3          # 19 named + 3 random = the 22-pattern boundary matrix; `validate --random N` for more


@dataclass
class ReviewResult:
    out: Path
    wall_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    validation_passed: Optional[bool] = None
    report: dict[str, Path] = field(default_factory=dict)
    summary: str = ""


def profile_config_for(suite: Suite) -> Config:
    """The configuration to profile: the SFT distribution at the suite's largest token budget (else the first)."""
    configs = suite.configs()
    sft = [c for c in configs if c.distribution == PROFILE_DISTRIBUTION] or configs
    return max(sft, key=lambda c: c.tokens)


def _profile(out: Path, suite: Suite, target: Target, nsys_path: Optional[str]) -> Optional[str]:
    """nsys profile of the PR's two variants; returns a one-line note when it cannot run."""
    from profiles.profile_command import profile_config
    from profiles.nsys import find_nsys
    if target.device != "cuda":
        return "no nsys profile: the review ran on the CPU (nsys profiles CUDA kernels)."
    exe = find_nsys(nsys_path)
    if exe is None:
        return "no nsys profile: Nsight Systems (nsys) was not found on PATH."
    config = profile_config_for(suite)
    try:
        profile_config("nsys", exe, config, list(PROFILE_VARIANTS), target, out, reps=5, warmup=2,
                       overhead_reps=20, ranges=[])
    except Exception as exc:  # noqa: BLE001 - a failed profile is a note in the report, not a lost review
        return f"no nsys profile: profiling {config.config_id} failed ({type(exc).__name__}: {str(exc)[:200]})."
    return None


def run_review(out: str | Path, suite: Optional[str] = None, backend: str = "auto", device: str = "auto",
               isolation: str = "process", nsys_path: Optional[str] = None, profile: bool = True,
               log: Callable[[str], None] = print, **overrides: object) -> ReviewResult:
    """Sweep, validate, profile and report into OUT; returns what ran and how long each step took.

    `overrides` narrow the suite as the sweep's flags do (distributions=[...], tokens=[...], ...).
    """
    out = Path(out)
    result = ReviewResult(out)
    the_suite, _ = suite_from_flags(suite, backend=backend, device=device, **overrides)
    check_suite(the_suite)
    target = resolve_target(the_suite.backend, the_suite.device)
    if target.device == "cpu":
        result.notes.append("CPU reference backend: the review checks the pipeline, not GPU speed.")

    def step(name: str, fn: Callable[[], object]) -> object:
        log(f"review: {name} ...")
        start = time.perf_counter()
        value = fn()
        result.wall_s[name] = round(time.perf_counter() - start, 1)
        log(f"review: {name} done in {result.wall_s[name]:.1f} s")
        return value

    step("sweep", lambda: run_sweep(the_suite, out / "sweep", target, isolation=isolation))
    dtype = "bfloat16" if target.device == "cuda" else "float32"
    patterns = catalogue() + random_patterns(the_suite.seed, RANDOM_PATTERNS)
    records = step("validate", lambda: run_validation(list(VALIDATE_VARIANTS), patterns, target.backend,
                                                      target.device, dtype, out / "validate",
                                                      seed=the_suite.seed, isolation=isolation,
                                                      spare_workers=8 if target.device == "cuda" else 2))
    result.validation_passed = summarize(records)["passed"]
    dirs = [out / "sweep", out / "validate"]
    if profile:
        note = step("profile", lambda: _profile(out / "profile", the_suite, target, nsys_path))
        if note:
            result.notes.append(note)
            log(f"review: {note}")
        elif (out / "profile" / "breakdown.json").is_file():
            dirs.append(out / "profile")
    result.report = step("report", lambda: build_report(dirs, out / "report", extra_notes=result.notes))
    write_json(out / "review.json", {"suite": the_suite.name, "backend": target.backend, "device": target.device,
                                     "wall_s": result.wall_s, "notes": result.notes,
                                     "validation_passed": result.validation_passed,
                                     "directories": [str(d) for d in dirs]}, indent=1, newline=True)
    validation = [json.loads(line) for line in (out / "validate" / "validation.jsonl").read_text().splitlines()
                  if line.strip()]
    recs = [Record.from_json(r) for r in read_records([out / "sweep" / "results.jsonl"])]
    result.summary = sweep_summary(recs, validation)
    return result
