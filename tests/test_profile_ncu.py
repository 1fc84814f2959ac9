"""Nsight Compute CSV parsing: a hand-written sample in ncu's details-page format, and real output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import sys

from bench.spec.grid import Config
from bench.run.sweep import Target
from profiles.profile_command import profile_config
from profiles.ncu import METRICS, import_command, ncu_command, nvtx_filter, parse_ncu_csv, summarize

FIXTURES = Path(__file__).parent / "fixtures" / "profiles"
REAL = sorted(FIXTURES.glob("ncu_*.csv"))
HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size",'
          '"Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"')
FILL = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<c10::BFloat16>>(int, T2)"


def _row(launch: int, metric: str, unit: str, value: str) -> str:
    return (f'"{launch}","123","python3.12","127.0.0.1","{FILL}","1","7","(128, 1, 1)","(4096, 1, 1)","0",'
            f'"9.0","Command line profiler metrics","{metric}","{unit}","{value}"')


SAMPLE = "\n".join(["==PROF== Connected to process 123", "program output line", HEADER]
                   + [_row(i, "dram__bytes_read.sum", "byte", "0") for i in range(2)]
                   + [_row(i, "dram__bytes_write.sum", "Mbyte", "1.5") for i in range(2)]
                   + [_row(i, "gpu__time_duration.sum", "usecond", "1,250.5") for i in range(2)]
                   + ["==PROF== Disconnected from process 123"])


def test_parse_details_csv_in_base_units() -> None:
    launches = parse_ncu_csv(SAMPLE)
    assert len(launches) == 2
    assert launches[0]["kernel"] == FILL
    assert launches[0]["gpu__time_duration.sum"] == pytest.approx(1_250_500.0)
    assert launches[0]["dram__bytes_write.sum"] == pytest.approx(1.5e6)
    summary = summarize(launches, reps=2)
    assert summary["gpu_ms"] == pytest.approx(1.2505)
    assert summary["kernels"][FILL]["count"] == 1
    assert summary["bytes"] == pytest.approx(1.5e6)


def test_no_csv_means_no_launches() -> None:
    assert parse_ncu_csv("==PROF== No kernels were profiled.") == []


def test_filter_and_command() -> None:
    assert nvtx_filter("bwd.zero_fill", "prefixbench") == "prefixbench@bwd.zero_fill/"
    assert nvtx_filter("bwd.zero_fill", None) == "bwd.zero_fill/"
    argv = ncu_command("ncu", "bwd.accumulate", "prefixbench", ["python", "-m", "x"], Path("/o/ncu_v_r.ncu-rep"))
    assert argv[argv.index("--metrics") + 1] == ",".join(METRICS)
    assert argv[argv.index("--export") + 1] == "/o/ncu_v_r.ncu-rep"
    assert argv[argv.index("--clock-control") + 1] == "base" and argv[argv.index("--cache-control") + 1] == "all"
    assert argv[-3:] == ["python", "-m", "x"]
    none = ncu_command("ncu", "r", None, ["p"], Path("b.ncu-rep"), clock_control="none", cache_control="none")
    assert none[none.index("--clock-control") + 1] == "none" and none[none.index("--cache-control") + 1] == "none"
    assert import_command("ncu", Path("/o/x.ncu-rep"))[:4] == ["ncu", "--import", "/o/x.ncu-rep", "--csv"]


# A fake ncu: profiling writes the .ncu-rep it was asked for (and logs its argv); --import prints a
# real CSV captured on the H100 for that variant and range.
FAKE_NCU = """#!{python}
import json, os, sys
args = sys.argv[1:]
fixtures = {fixtures!r}
if "--import" in args:
    name = os.path.basename(args[args.index("--import") + 1])[len("ncu_"):-len(".ncu-rep")]
    sys.stdout.write(open(os.path.join(fixtures, "ncu_" + name + ".csv")).read())
else:
    open(args[args.index("--export") + 1], "w").write("fake report")
    with open(os.environ["FAKE_NCU_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
"""


@pytest.mark.skipif(len(REAL) < 4, reason="needs the real ncu CSVs in tests/fixtures/profiles")
def test_ncu_flow_keeps_reports_and_records_controls(tmp_path: Path, monkeypatch) -> None:
    exe = tmp_path / "ncu"
    exe.write_text(FAKE_NCU.format(python=sys.executable, fixtures=str(FIXTURES)))
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_NCU_LOG", str(tmp_path / "argv.jsonl"))
    out = tmp_path / "out"
    config = Config("sft_long_prompt", 256, 2, 32, "float32", context=256)
    bd = profile_config("ncu", str(exe), config, ["zeros_always", "guarded_passthrough"], Target("reference", "cpu"),
                        out, reps=5, warmup=1, overhead_reps=0, ranges=["bwd.zero_fill", "bwd.accumulate"],
                        clock_control="none", cache_control="all")
    written = json.loads((out / "breakdown.json").read_text())
    assert written["ncu"] == {"clock_control": "none", "cache_control": "all"}
    for variant in ("zeros_always", "guarded_passthrough"):
        for range_name in ("bwd.zero_fill", "bwd.accumulate"):
            rep = written["files"][f"ncu_rep:{variant}:{range_name}"]
            assert rep == f"ncu_{variant}_{range_name}.ncu-rep"            # relative to breakdown.json
            assert (out / rep).read_text() == "fake report"
            assert (out / written["files"][f"ncu_csv:{variant}:{range_name}"]).exists()
    assert written["variants"]["zeros_always"]["ranges"]["bwd.zero_fill"]["gpu_ms"] > 0
    runs = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    assert len(runs) == 4
    assert all(r[r.index("--clock-control") + 1] == "none" for r in runs)
    assert bd["ncu"] == written["ncu"]


@pytest.mark.skipif(not REAL, reason="no real ncu CSV in tests/fixtures/profiles")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_ncu_csv(path: Path) -> None:
    launches = parse_ncu_csv(path.read_text())
    assert launches, "ncu profiled no kernel in the range"
    for launch in launches:
        assert launch["gpu__time_duration.sum"] > 0
        assert launch["dram__bytes_read.sum"] + launch["dram__bytes_write.sum"] > 0
