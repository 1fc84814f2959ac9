"""The nsys path's plumbing without a GPU: a fake `nsys` runs the workload runner on the CPU and
"exports" a synthetic SQLite; the command must produce a breakdown from it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.spec.grid import Config
from bench.run.sweep import Target
from profiles.profile_command import profile_config
from profiles.nsys import profile_command, stats_command

sys.path.insert(0, str(Path(__file__).parent))
from test_profile_nsys_sqlite import _synthetic  # noqa: E402

FAKE_NSYS = """#!{python}
import os, shutil, subprocess, sys
args = sys.argv[1:]
if args[0] == "profile":
    out = args[args.index("-o") + 1]
    program = args[args.index("-o") + 2:]
    subprocess.run(program, check=True)
    open(out + ".nsys-rep", "w").write("fake")
elif args[0] == "export":
    shutil.copyfile(os.environ["FAKE_NSYS_SQLITE"], args[args.index("-o") + 1])
elif args[0] == "stats":
    base = args[args.index("--output") + 1]
    for name in args[args.index("--report") + 1].split(","):
        open(base + "_" + name + ".csv", "w").write("Time (%),Total Time (ns),Name\\n100.0,1000,x\\n")
"""


@pytest.fixture
def fake_nsys(tmp_path: Path, monkeypatch) -> str:
    exe = tmp_path / "nsys"
    exe.write_text(FAKE_NSYS.format(python=sys.executable))
    exe.chmod(0o755)
    sqlite = tmp_path / "synthetic.sqlite"
    _synthetic(sqlite, variant="zeros_always")
    monkeypatch.setenv("FAKE_NSYS_SQLITE", str(sqlite))
    return str(exe)


def test_nsys_flow_writes_breakdown_with_runner_meta(fake_nsys: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = Config("sft_long_prompt", 256, 2, 32, "float32", context=256)
    bd = profile_config("nsys", fake_nsys, config, ["zeros_always"], Target("reference", "cpu"), out,
                        reps=2, warmup=1, overhead_reps=1, ranges=[])
    assert bd["tool"] == "nsys"
    assert set(bd["variants"]["zeros_always"]["ranges"]) == {"bwd.zero_fill", "bwd.bidir_pass"}
    assert bd["nvtx_overhead"]["variant"] == "zeros_always"          # measured by the runner under nsys
    written = json.loads((out / "breakdown.json").read_text())
    assert written["files"]["nsys_rep"] == "profile.nsys-rep"        # relative to breakdown.json
    assert (out / written["files"]["nsys_rep"]).exists()
    for name in ("nvtx_sum", "cuda_gpu_kern_sum"):
        csv_path = out / written["files"][f"nsys_stats:{name}"]
        assert csv_path.name == f"profile_{name}.csv" and "Total Time (ns)" in csv_path.read_text()
    assert "nsys_stats_error" not in written
    meta = json.loads((out / "runner_meta.json").read_text())
    assert meta["reps"] == 2 and meta["variants"] == ["zeros_always"]
    assert json.loads((out / "breakdown.json").read_text())["config"]["config_id"] == config.config_id


def test_stats_command_asks_for_both_summaries() -> None:
    argv = stats_command("nsys", Path("/o/profile.nsys-rep"), Path("/o/profile"))
    assert argv[argv.index("--report") + 1] == "nvtx_sum,cuda_gpu_kern_sum"
    assert argv[argv.index("--format") + 1] == "csv" and argv[-1] == "/o/profile.nsys-rep"


def test_profile_command_limits_capture_to_profiler_api() -> None:
    argv = profile_command("nsys", Path("/o/profile"), ["python", "-m", "profiles.workload_runner"])
    assert "--capture-range=cudaProfilerApi" in argv and "--trace=cuda,nvtx" in argv
    assert argv[argv.index("-o") + 1] == "/o/profile"
