"""Nsight Systems: find it, profile the workload runner, export SQLite, attribute per range.

Capture is limited to the measured repetitions (the runner calls cudaProfilerStart/Stop; nsys runs
with --capture-range=cudaProfilerApi), so warm-up, autotuning and allocation are not in the report.
The .nsys-rep is kept next to the .sqlite for the GUI, and `nsys stats` writes its own summaries
(profile_nvtx_sum.csv, profile_cuda_gpu_kern_sum.csv) as a cross-check of the attribution: the
same kernels and ranges, counted by NVIDIA's tool instead of ours.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from bench.spec.errors import UserError
from bench.spec.grid import Config
from profiles.workload_runner import REPO_ROOT, runner_command, runner_env

NSYS_GLOBS = ("/opt/nvidia/nsight-systems/*/bin/nsys", "/opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys",
              "/usr/local/cuda/bin/nsys", "/usr/local/cuda-*/bin/nsys")
STDERR_TAIL = 600
STATS_REPORTS = ("nvtx_sum", "cuda_gpu_kern_sum")


def find_tool(name: str, explicit: Optional[str], globs: Sequence[str] = ()) -> Optional[str]:
    """`explicit` (must exist, else UserError), else `name` on PATH, else the first known location."""
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UserError(f"--{name} {explicit}: not an executable file")
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    for pattern in globs:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    return None


def find_nsys(explicit: Optional[str] = None) -> Optional[str]:
    return find_tool("nsys", explicit, NSYS_GLOBS)


def run_tool(argv: list[str], what: str, env: Optional[dict[str, str]] = None,
             timeout_s: Optional[float] = None) -> subprocess.CompletedProcess:
    """Run a profiler step; failure becomes one line with the tail of its stderr."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=timeout_s)
    except FileNotFoundError:
        raise UserError(f"{what}: cannot execute {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what}: timed out after {timeout_s} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().replace("\n", " | ")[-STDERR_TAIL:]
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc


@dataclass
class NsysCapture:
    report_path: Path          # .nsys-rep
    sqlite_path: Path
    meta_path: Path            # what the runner did (config, reps, NVTX backend/domain, overhead)
    stats_paths: dict[str, Path] = field(default_factory=dict)   # nsys stats report -> CSV
    stats_error: Optional[str] = None                             # an nsys without these reports


def profile_command(nsys: str, out_base: Path, program: list[str]) -> list[str]:
    return [nsys, "profile", "--trace=cuda,nvtx", "--sample=none", "--cpuctxsw=none",
            "--capture-range=cudaProfilerApi", "--capture-range-end=stop", "--force-overwrite=true",
            "-o", str(out_base), *program]


def export_command(nsys: str, report: Path, sqlite_path: Path) -> list[str]:
    return [nsys, "export", "--type=sqlite", "--force-overwrite=true", "-o", str(sqlite_path), str(report)]


def stats_command(nsys: str, report: Path, out_base: Path) -> list[str]:
    """`nsys stats` summaries as CSV files named `<out_base>_<report>.csv`."""
    return [nsys, "stats", "--report", ",".join(STATS_REPORTS), "--format", "csv", "--force-overwrite=true",
            "--output", str(out_base), str(report)]


def write_stats(nsys: str, report: Path, out_base: Path,
                timeout_s: Optional[float] = None) -> tuple[dict[str, Path], Optional[str]]:
    """({report name: CSV path}, None) or ({}, the one-line reason); the stats are a cross-check only."""
    try:
        run_tool(stats_command(nsys, report, out_base), "nsys stats", timeout_s=timeout_s)
    except UserError as exc:
        return {}, str(exc)
    paths = {name: out_base.with_name(f"{out_base.name}_{name}.csv") for name in STATS_REPORTS}
    missing = [name for name, path in paths.items() if not path.exists()]
    found = {name: path for name, path in paths.items() if path.exists()}
    return found, (f"nsys stats wrote no {', '.join(missing)} CSV" if missing else None)


def capture(nsys: str, out_dir: Path, config: Config, variants: Sequence[str], backend: str, device: str,
            reps: int, warmup: int = 2, overhead_reps: int = 20, timeout_s: float = 900) -> NsysCapture:
    """Profile the runner under nsys and export the report to SQLite in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "runner_meta.json"
    program = runner_command(config, variants, backend, device, reps, warmup, overhead_reps=overhead_reps,
                             meta_json=meta_path)
    base = out_dir / "profile"
    run_tool(profile_command(nsys, base, program), "nsys profile", env=runner_env(), timeout_s=timeout_s)
    report = base.with_suffix(".nsys-rep")
    if not report.exists():
        legacy = base.with_suffix(".qdrep")
        report = legacy if legacy.exists() else report
    if not report.exists():
        raise UserError(f"nsys profile wrote no report at {report} (did the capture range ever start?)")
    sqlite_path = out_dir / "profile.sqlite"
    run_tool(export_command(nsys, report, sqlite_path), "nsys export", timeout_s=timeout_s)
    stats, stats_error = write_stats(nsys, report, base, timeout_s=timeout_s)
    return NsysCapture(report, sqlite_path, meta_path, stats, stats_error)
