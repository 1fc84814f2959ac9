"""Nsight Compute on the kernels of one phase range: time and DRAM bytes per kernel.

One ncu run per (variant, range), filtered with `--nvtx --nvtx-include "<domain>@<range>/"` (a
push/pop range of the "prefixbench" domain; the default domain has no "<domain>@" part) and
`--profile-from-start off`, so only the runner's measured reps count (warm-up runs without phase
ranges). Each run keeps its `.ncu-rep` (open it in Nsight Compute) and is read back with
`ncu --import X.ncu-rep --csv --print-units base` (nanoseconds and bytes).

Clock and cache control are set explicitly and recorded. ncu's defaults, kept here, lock the SM
clock to base and flush caches before each kernel: kernel times are then repeatable but longer
than under nsys or a sweep (which run at boost clocks with warm caches); `--clock-control none
--cache-control none` measures kernels as they run in a sweep.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional, Sequence

from bench.spec.errors import UserError
from bench.spec.grid import Config
from profiles.nsys import find_tool, run_tool
from profiles.options import CACHE_CONTROLS, CLOCK_CONTROLS
from profiles.nvtx_ranges import NvtxEmitter
from profiles.workload_runner import runner_command, runner_env

NCU_GLOBS = ("/opt/nvidia/nsight-compute/*/ncu", "/usr/local/cuda/bin/ncu", "/usr/local/cuda-*/bin/ncu")
METRICS = ("gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum")
DEFAULT_RANGES = ("bwd.zero_fill", "bwd.accumulate")
DEFAULT_CLOCK_CONTROL, DEFAULT_CACHE_CONTROL = "base", "all"
UNIT_SCALE = {"ns": 1.0, "nsecond": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6, "second": 1e9,
              "s": 1e9, "byte": 1.0, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9, "tbyte": 1e12}


def find_ncu(explicit: Optional[str] = None) -> Optional[str]:
    return find_tool("ncu", explicit, NCU_GLOBS)


def nvtx_filter(range_name: str, domain: Optional[str]) -> str:
    return f"{domain}@{range_name}/" if domain else f"{range_name}/"


def ncu_command(ncu: str, range_name: str, domain: Optional[str], program: list[str], report: Path,
                clock_control: str = DEFAULT_CLOCK_CONTROL, cache_control: str = DEFAULT_CACHE_CONTROL) -> list[str]:
    """Profile one range into `report` (named with its .ncu-rep suffix, so ncu adds none)."""
    return [ncu, "--nvtx", "--nvtx-include", nvtx_filter(range_name, domain), "--profile-from-start", "off",
            "--clock-control", clock_control, "--cache-control", cache_control,
            "--metrics", ",".join(METRICS), "--force-overwrite", "--export", str(report), *program]


def import_command(ncu: str, report: Path) -> list[str]:
    """Read a kept report back as the details-page CSV that `parse_ncu_csv` reads."""
    return [ncu, "--import", str(report), "--csv", "--page", "details", "--print-units", "base"]


def _number(text: str) -> Optional[float]:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def parse_ncu_csv(text: str) -> list[dict]:
    """Long-format (details page) CSV -> [{"id", "kernel", metric: value in ns or bytes}] per launch.

    ncu prints its own "==PROF==" lines and the program's output around the CSV; only lines from the
    header (the one naming "Metric Name") on are read.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if '"Metric Name"' in line and '"ID"' in line), None)
    if start is None:
        return []
    launches: dict[str, dict] = {}
    for row in csv.DictReader(io.StringIO("\n".join(l for l in lines[start:] if l.startswith('"')))):
        value = _number(row.get("Metric Value", ""))
        if value is None or row.get("Metric Name") not in METRICS:
            continue
        unit = (row.get("Metric Unit") or "").strip().lower()
        value *= UNIT_SCALE.get(unit, 1.0)
        name = row.get("Kernel Name") or row.get("Function Name") or "?"
        launch = launches.setdefault(row["ID"], {"id": row["ID"], "kernel": name})
        launch[row["Metric Name"]] = value
    return list(launches.values())


def summarize(launches: Sequence[dict], reps: int) -> dict:
    """One range of one variant, per rep: gpu_ms, dram bytes, kernels {name: {count, ms, bytes}}."""
    per_rep = 1.0 / max(reps, 1)
    kernels: dict[str, dict] = {}
    total_ns = total_read = total_write = 0.0
    for launch in launches:
        ns = launch.get("gpu__time_duration.sum", 0.0)
        read, write = launch.get("dram__bytes_read.sum", 0.0), launch.get("dram__bytes_write.sum", 0.0)
        nbytes = read + write
        k = kernels.setdefault(launch["kernel"], {"count": 0.0, "ms": 0.0, "bytes": 0.0, "kind": "kernel"})
        k["count"] += per_rep
        k["ms"] += ns / 1e6 * per_rep
        k["bytes"] += nbytes * per_rep
        total_ns += ns
        total_read += read
        total_write += write
    return {"gpu_ms": total_ns / 1e6 * per_rep, "kernels": kernels, "bytes": (total_read + total_write) * per_rep,
            "dram_read_bytes": total_read * per_rep, "dram_write_bytes": total_write * per_rep}


def profile_ranges(ncu: str, out_dir: Path, config: Config, variants: Sequence[str], backend: str, device: str,
                   reps: int, ranges: Sequence[str] = DEFAULT_RANGES, warmup: int = 2, timeout_s: float = 900,
                   clock_control: str = DEFAULT_CLOCK_CONTROL,
                   cache_control: str = DEFAULT_CACHE_CONTROL) -> tuple[dict[str, dict], dict[str, str]]:
    """({variant: {"ranges": {range: summary}}}, {file key: path}); each run's .ncu-rep and its CSV
    are kept in `out_dir` as ncu_<variant>_<range>.ncu-rep / .csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    domain = NvtxEmitter().range_domain
    result: dict[str, dict] = {}
    files: dict[str, str] = {}
    for variant in variants:
        program = runner_command(config, [variant], backend, device, reps, warmup, overhead_reps=0)
        result[variant] = {"ranges": {}}
        for range_name in ranges:
            what = f"ncu ({variant}, {range_name})"
            base = out_dir / f"ncu_{variant}_{range_name}"
            report = base.with_name(base.name + ".ncu-rep")
            run_tool(ncu_command(ncu, range_name, domain, program, report, clock_control, cache_control), what,
                     env=runner_env(), timeout_s=timeout_s)
            if not report.exists():
                raise UserError(f"{what} wrote no {report.name} (did the range run any kernel?)")
            text = run_tool(import_command(ncu, report), f"ncu --import {report.name}", timeout_s=timeout_s).stdout
            csv_path = base.with_name(base.name + ".csv")
            csv_path.write_text(text)
            files[f"ncu_rep:{variant}:{range_name}"] = str(report)
            files[f"ncu_csv:{variant}:{range_name}"] = str(csv_path)
            launches = parse_ncu_csv(text)
            if launches:
                result[variant]["ranges"][range_name] = summarize(launches, reps)
    return result, files


def control_record(clock_control: str, cache_control: str) -> dict[str, str]:
    """What breakdown.json records about how ncu ran the kernels."""
    return {"clock_control": clock_control, "cache_control": cache_control}
