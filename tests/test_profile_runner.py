"""The profiled program's order of work and the range names it shares with the attribution (CPU only)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import profiles.torch_profiler as torch_profiler
import profiles.workload_runner as workload_runner
from bench.spec.grid import Config
from bench.run.sweep import Target
from profiles.attribution import is_global, leaf_range, rep_variant
from profiles.profile_command import profile_config
from profiles.nvtx_ranges import config_range_name, rep_range_name

CONFIG = Config("sft_long_prompt", 256, 2, 32, "float32", context=256)


def test_range_names_parse_back() -> None:
    stack = (config_range_name("a/b"), rep_range_name("zeros_always", 3), "bwd.zero_fill")
    assert rep_variant(stack) == ("zeros_always", 3)
    assert leaf_range(stack) == "bwd.zero_fill" and leaf_range(stack[:2]) == "(outside phases)"
    assert is_global(stack[0]) and is_global(stack[1]) and not is_global(stack[2])


def test_overhead_is_measured_after_the_capture_range(monkeypatch) -> None:
    """The first push to the NVTX domain (which registers it) must happen inside the nsys capture."""
    events: list[str] = []
    monkeypatch.setattr(workload_runner, "prepare_run", lambda *a, **k: SimpleNamespace(cuda=True, emitter=None))
    monkeypatch.setattr(workload_runner, "warm_up", lambda run, n: events.append("warm_up"))
    monkeypatch.setattr(workload_runner, "measured_reps", lambda run, n: events.append("reps"))
    monkeypatch.setattr(workload_runner, "overhead_for",
                        lambda run, variant, n: events.append("overhead") or {"variant": variant, "reps": n})
    cudart = SimpleNamespace(cudaProfilerStart=lambda: events.append("start"),
                             cudaProfilerStop=lambda: events.append("stop"))
    monkeypatch.setattr(torch.cuda, "cudart", lambda: cudart)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    meta = workload_runner.run_profiled(CONFIG, ["zeros_always"], "reference", "cpu", reps=2,
                                        cuda_profiler_api=True, overhead_reps=3)
    assert events == ["warm_up", "start", "reps", "stop", "overhead"]
    assert meta["nvtx_overhead"] == {"variant": "zeros_always", "reps": 3}


def test_runner_command_always_traces() -> None:
    argv = workload_runner.runner_command(CONFIG, ["a", "b"], "reference", "cpu", 2, meta_json=Path("m.json"))
    assert "--nvtx" in argv and "--cuda-profiler-api" in argv
    assert argv[argv.index("--variants") + 1] == "a,b" and argv[-2:] == ["--meta-json", "m.json"]


@pytest.mark.parametrize("overhead_reps", [0, 1])
def test_torch_tool_builds_the_workload_once(overhead_reps: int, tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple] = []
    real = workload_runner.prepare_run

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_profiler, "prepare_run", counting)
    monkeypatch.setattr(workload_runner, "prepare_run", counting)
    bd = profile_config("torch", None, CONFIG, ["zeros_always", "guarded_passthrough"],
                        Target("reference", "cpu"), tmp_path, reps=1, warmup=1, overhead_reps=overhead_reps,
                        ranges=[])
    assert len(calls) == 1
    if overhead_reps:
        assert bd["nvtx_overhead"]["variant"] == "zeros_always" and bd["nvtx_overhead"]["reps"] == 1
        assert bd["nvtx_overhead"]["clock"] == "perf_counter"
    else:
        assert bd["nvtx_overhead"] is None
