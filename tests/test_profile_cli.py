"""`prefixbench profile` on the CPU: the torch.profiler path end to end, tool choice, one-line errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli

TINY = ["--tokens", "256", "--heads", "2", "--head-dim", "32", "--dtype", "float32",
        "--distribution", "sft_long_prompt", "--backend", "reference", "--device", "cpu", "--reps", "2",
        "--warmup", "1", "--overhead-reps", "1"]
BWD = ("bwd.alloc", "bwd.zero_fill", "bwd.bidir_pass", "bwd.causal_pass", "bwd.accumulate")


@pytest.fixture(scope="module")
def torch_profile(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("profile")
    result = CliRunner().invoke(cli.app, ["profile", "--tool", "torch", "--out", str(out), *TINY,
                                          "--variant", "zeros_always", "--variant", "guarded_passthrough"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "breakdown.json").read_text())


def test_breakdown_has_every_phase_of_both_variants(torch_profile) -> None:
    _, bd = torch_profile
    assert bd["tool"] == "torch" and bd["reps"] == 2
    assert list(bd["variants"]) == ["zeros_always", "guarded_passthrough"]
    for variant in bd["variants"].values():
        ranges = variant["ranges"]
        assert {"fwd.bidir_pass", "fwd.causal_pass", *BWD} <= set(ranges)
        assert list(ranges)[:2] == ["fwd.bidir_pass", "fwd.causal_pass"]          # execution order
        for entry in ranges.values():
            assert entry["gpu_ms"] >= 0 and entry["kernels"]
        assert variant["total_gpu_ms"] == pytest.approx(sum(e["gpu_ms"] for e in ranges.values()))


def test_zero_fill_counts_follow_the_variants(torch_profile) -> None:
    _, bd = torch_profile
    fills = {name: v["ranges"]["bwd.zero_fill"]["kernels"]["aten::zero_"]["count"]
             for name, v in bd["variants"].items()}
    assert fills == {"zeros_always": 4, "guarded_passthrough": 2}     # dK1, dV1 (+ dK2, dV2)
    accumulate = bd["variants"]["zeros_always"]["ranges"]["bwd.accumulate"]["kernels"]
    assert accumulate["aten::add_"]["count"] == 2


def test_difference_and_overhead_and_trace(torch_profile) -> None:
    out, bd = torch_profile
    first, second = (bd["variants"][n]["ranges"] for n in ("zeros_always", "guarded_passthrough"))
    assert bd["difference"]["bwd.zero_fill"] == pytest.approx(second["bwd.zero_fill"]["gpu_ms"]
                                                              - first["bwd.zero_fill"]["gpu_ms"])
    overhead = bd["nvtx_overhead"]
    assert {"overhead_per_rep_us", "overhead_percent", "plain_rep_us", "observed_rep_us"} <= set(overhead)
    assert overhead["overhead_per_rep_us"] >= 0 and overhead["overhead_percent"] >= 0
    assert overhead["below_resolution"] or overhead["overhead_per_rep_us"] > overhead["resolution_us"]
    assert bd["files"]["chrome_trace"] == "trace.json"                  # relative to breakdown.json
    trace = json.loads((out / bd["files"]["chrome_trace"]).read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"bwd.zero_fill", "rep:zeros_always:0", "rep:guarded_passthrough:1"} <= names


def test_auto_tool_falls_back_to_torch_without_cuda(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["profile", "--out", str(tmp_path), *TINY, "--reps", "1",
                                          "--overhead-reps", "0", "--variant", "prefix_rows_add"])
    assert result.exit_code == 0, result.output
    bd = json.loads((tmp_path / "breakdown.json").read_text())
    assert bd["tool"] == "torch" and bd["difference"] is None and bd["nvtx_overhead"] is None
    assert "bwd.zero_fill" not in bd["variants"]["prefix_rows_add"]["ranges"]     # it never zero-fills


@pytest.mark.parametrize("args, message", [
    (["--tool", "nsys", "--nsys", "/nonexistent/nsys"], "--nsys /nonexistent/nsys"),
    (["--tool", "ncu", "--ncu", "/nonexistent/ncu"], "--ncu /nonexistent/ncu"),
    (["--tool", "nsys", "--nsys", "FAKE"], "--tool nsys needs --device cuda"),
    (["--tool", "ncu", "--ncu", "FAKE"], "--tool ncu needs --device cuda"),
    (["--tool", "perf"], "--tool 'perf'"),
    (["--variant", "nope"], "unknown variant"),
    (["--range", "bwd.zerofill"], "--range 'bwd.zerofill'"),
    (["--tool", "ncu", "--ncu", "FAKE", "--range", "bwd.accumulate", "--range", "nope"], "--range 'nope'"),
    (["--tool", "ncu", "--ncu", "FAKE", "--clock-control", "boost"], "--clock-control 'boost'"),
    (["--tool", "ncu", "--ncu", "FAKE", "--cache-control", "some"], "--cache-control 'some'"),
])
def test_bad_flags_are_one_line_errors(args, message, tmp_path, monkeypatch, capsys) -> None:
    fake = tmp_path / "fake_tool"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    args = [str(fake) if a == "FAKE" else a for a in args]
    monkeypatch.setattr(sys, "argv", ["prefixbench", "profile", "--out", str(tmp_path), *TINY, *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_an_overhead_within_noise_is_below_resolution_never_negative() -> None:
    from profiles.nvtx_ranges import overhead_summary
    faster = overhead_summary([10.0, 10.4, 10.2], [9.4, 9.6, 9.5], reps=10)   # observed faster: only noise does that
    assert faster["overhead_per_rep_us"] == 0.0 and faster["below_resolution"] and faster["overhead_percent"] == 0.0
    assert faster["resolution_us"] == pytest.approx(40.0)
    real = overhead_summary([10.0, 10.1, 10.05], [12.0, 12.2, 12.1], reps=10)
    assert not real["below_resolution"] and real["overhead_per_rep_us"] == pytest.approx(200.0)
    assert real["overhead_percent"] == pytest.approx(20.0)


def test_a_cpu_profile_says_so_and_hides_the_profilers_own_lines(tmp_path: Path, capfd) -> None:
    from tests.cli_run import cli_in_process
    code, _, err = cli_in_process("profile", "--tool", "torch", "--out", str(tmp_path), *TINY,
                                  "--variant", "prefix_rows_add", "--overhead-reps", "0")
    assert code == 0, err
    native = capfd.readouterr().err                       # what reached file descriptor 2 directly
    assert "profiling the CPU reference backend" in err
    assert "USDT" not in native + err and "profiler_start" not in native + err
