"""The `profile` driver: one configuration (or a few) under nsys, ncu or torch.profiler -> breakdown.json."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from bench.spec.errors import UserError
from profiles.options import TOOLS
from bench.spec.grid import Config, Suite
from bench.harness.registry import check_suite
from bench.run.sweep import Target, resolve_target, suite_from_flags

DEFAULT_VARIANTS = ("zeros_always", "guarded_passthrough")
MAX_CONFIGS = 4


def profile_suite(suite_name: Optional[str], variants: list[str], axes: dict) -> Suite:
    """The sweep's suite and flags; without --suite, one configuration (each axis' first value)."""
    the_suite, _ = suite_from_flags(suite_name, variants=variants, **axes)
    if suite_name is None:
        narrowed = {k: getattr(the_suite, k)[:1] for k in ("distributions", "tokens", "heads", "head_dims", "dtypes")
                    if not axes.get(k)}
        the_suite = the_suite.with_overrides(**narrowed)
        if not variants:
            the_suite = the_suite.with_overrides(variants=list(DEFAULT_VARIANTS))
    the_suite = replace(the_suite, peers=())          # peers have no phases to attribute
    check_suite(the_suite)
    if len(the_suite.configs()) > MAX_CONFIGS:
        raise UserError(f"profile takes at most {MAX_CONFIGS} configurations, the grid has "
                        f"{len(the_suite.configs())}: narrow it with --distribution/--tokens/--heads/--head-dim/--dtype")
    return the_suite


def choose_tool(tool: str, target: Target, nsys_path: Optional[str], ncu_path: Optional[str]) -> tuple[str, Optional[str]]:
    """(tool, executable); auto picks nsys when found on a CUDA run, else torch.profiler."""
    from profiles.ncu import find_ncu
    from profiles.nsys import find_nsys
    if tool not in TOOLS:
        raise UserError(f"--tool {tool!r}: choose {', '.join(TOOLS)}")
    if tool == "torch":
        return tool, None
    if tool == "auto":
        exe = find_nsys(nsys_path) if target.device == "cuda" else None
        return ("nsys", exe) if exe else ("torch", None)
    name, exe = tool, (find_ncu(ncu_path) if tool == "ncu" else find_nsys(nsys_path))
    if exe is None:
        full = "Nsight Compute" if tool == "ncu" else "Nsight Systems"
        raise UserError(f"{name} ({full}) not found: put it on PATH or pass --{name} PATH")
    if target.device != "cuda":
        raise UserError(f"--tool {tool} needs --device cuda")
    return tool, exe


def check_ranges(ranges: list[str]) -> None:
    """--range names must be op phases: ncu would silently profile nothing for a typo."""
    from prefixlm_attn.phases import ALL_PHASES
    unknown = [name for name in ranges if name not in ALL_PHASES]
    if unknown:
        raise UserError(f"--range {unknown[0]!r}: not a phase; choose from {', '.join(ALL_PHASES)}")


def check_ncu_controls(clock_control: str, cache_control: str) -> None:
    from profiles.ncu import CACHE_CONTROLS, CLOCK_CONTROLS
    if clock_control not in CLOCK_CONTROLS:
        raise UserError(f"--clock-control {clock_control!r}: choose {', '.join(CLOCK_CONTROLS)}")
    if cache_control not in CACHE_CONTROLS:
        raise UserError(f"--cache-control {cache_control!r}: choose {', '.join(CACHE_CONTROLS)}")


def in_process_overhead(config: Config, variant: str, target: Target, reps: int) -> Optional[dict]:
    """NVTX overhead for ncu, measured here: under ncu (kernel replay) the runner cannot time itself."""
    from profiles.workload_runner import overhead_for, prepare_run, warm_up
    if reps <= 0:
        return None
    run = prepare_run(config, [variant], target.backend, target.device, nvtx=True)
    warm_up(run, 1)
    return overhead_for(run, variant, reps)


def profile_config(tool: str, exe: Optional[str], config: Config, variants: list[str], target: Target,
                   out_dir: Path, reps: int, warmup: int, overhead_reps: int, ranges: list[str],
                   clock_control: str = "base", cache_control: str = "all") -> dict:
    """Run one configuration under the tool; returns the breakdown written to out_dir/breakdown.json."""
    from profiles.attribution import aggregate
    from profiles.breakdown import build_breakdown, relative_files, write_breakdown
    args = (config, variants, target.backend, target.device, reps)
    if tool == "nsys":
        import json
        from profiles.nsys import capture
        from profiles.nsys_sqlite import attributed_activities
        cap = capture(exe, out_dir, *args, warmup=warmup, overhead_reps=overhead_reps)
        meta = json.loads(cap.meta_path.read_text()) if cap.meta_path.exists() else {}
        domain = meta.get("nvtx_domain")
        # the "prefixbench" domain (nvtx package); torch.cuda.nvtx's default domain: no filter
        data = aggregate(attributed_activities(cap.sqlite_path, domains=[domain] if domain else None), reps)
        overhead = meta.get("nvtx_overhead")
        files = {"nsys_rep": str(cap.report_path), "sqlite": str(cap.sqlite_path),
                 **{f"nsys_stats:{name}": str(path) for name, path in cap.stats_paths.items()}}
        extra = {"nsys_stats_error": cap.stats_error} if cap.stats_error else {}
    elif tool == "ncu":
        from profiles.ncu import DEFAULT_RANGES, control_record, profile_ranges
        data, files = profile_ranges(exe, out_dir, *args, ranges=ranges or DEFAULT_RANGES, warmup=warmup,
                                     clock_control=clock_control, cache_control=cache_control)
        overhead = in_process_overhead(config, variants[0], target, overhead_reps)
        extra = {"ncu": control_record(clock_control, cache_control)}
    else:
        from profiles.torch_profiler import capture_trace, trace_activities
        trace, overhead = capture_trace(out_dir, *args, warmup=warmup, overhead_reps=overhead_reps)
        data = aggregate(trace_activities(trace), reps)
        files, extra = {"chrome_trace": str(trace)}, {}
    breakdown = build_breakdown(tool, config, variants, data, reps, overhead, relative_files(files, out_dir),
                                extra={"backend": target.backend, "device": target.device, **extra})
    write_breakdown(out_dir, breakdown)
    return breakdown


CPU_PROFILE_NOTICE = ("prefixbench: profiling the CPU reference backend with torch.profiler: the ranges time "
                      "CPU work, not GPU kernels")


def profile_command(out: Path, tool: str, nsys: Optional[str], ncu: Optional[str], suite: Optional[str],
                    variants: list[str], axes: dict, reps: int, warmup: int, overhead_reps: Optional[int],
                    ranges: list[str], clock_control: str, cache_control: str,
                    on_breakdown: Callable[[Path, dict], None],
                    notify: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Attribute device time to the op's phases per variant; `on_breakdown(path, breakdown)` after each
    configuration. Returns the breakdown.json paths."""
    if reps < 1 or warmup < 0:
        raise UserError("--reps must be >= 1 and --warmup >= 0")
    check_ranges(ranges)
    check_ncu_controls(clock_control, cache_control)
    the_suite = profile_suite(suite, variants, axes)
    target = resolve_target(the_suite.backend, the_suite.device)
    chosen, exe = choose_tool(tool, target, nsys, ncu)
    if target.device == "cpu":
        notify(CPU_PROFILE_NOTICE)
    n_overhead = overhead_reps if overhead_reps is not None else (20 if target.device == "cuda" else 2)
    configs = the_suite.configs()
    written = []
    for i, config in enumerate(configs):
        sub = out if len(configs) == 1 else out / f"{i}_{config.config_id.replace('/', '_')}"
        try:
            breakdown = profile_config(chosen, exe, config, list(the_suite.variants), target, sub, reps,
                                       warmup, n_overhead, ranges, clock_control, cache_control)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crashed variant is one line, not a traceback
            raise UserError(f"profiling {config.config_id} failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        written.append(sub / "breakdown.json")
        on_breakdown(sub / "breakdown.json", breakdown)
    return written
