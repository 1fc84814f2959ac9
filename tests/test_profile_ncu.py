"""Nsight Compute CSV parsing: a hand-written sample in ncu's details-page format, and real output."""
from __future__ import annotations

from pathlib import Path

import pytest

from profiles.ncu import METRICS, ncu_command, nvtx_filter, parse_ncu_csv, summarize

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
    argv = ncu_command("ncu", "bwd.accumulate", "prefixbench", ["python", "-m", "x"])
    assert argv[argv.index("--metrics") + 1] == ",".join(METRICS)
    assert argv[-3:] == ["python", "-m", "x"]


@pytest.mark.skipif(not REAL, reason="no real ncu CSV in tests/fixtures/profiles")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_ncu_csv(path: Path) -> None:
    launches = parse_ncu_csv(path.read_text())
    assert launches, "ncu profiled no kernel in the range"
    for launch in launches:
        assert launch["gpu__time_duration.sum"] > 0
        assert launch["dram__bytes_read.sum"] + launch["dram__bytes_write.sum"] > 0
