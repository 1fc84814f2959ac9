"""The sweep on a GPU with FA3: gpu-mode (held) timings beside eager, L2 flush, CUDA-graph replays in the
same interleaved rounds, the known crash."""
import json

import dataclasses

import pytest

from bench.spec.grid import load_suite
from bench.results.records import Record
from bench.results.stats import median
from bench.run.sweep import resolve_target, run_sweep

pytestmark = pytest.mark.gpu


def test_fa3_sweep_with_l2_flush_and_cuda_graphs(tmp_path):
    target = resolve_target("auto", "cuda")
    if target.backend != "fa3":
        pytest.skip("FA3 did not load")
    suite = load_suite("default").with_overrides(
        distributions=["sft_long_prompt", "no_causal"], tokens=[4096], heads=[4], variants=[
            "unguarded", "zeros_always", "guarded_passthrough", "prefix_rows_add"],
        min_reps=5, max_reps=20, time_cap_s=2.0, phase_reps=3, l2_flush=True, cuda_graph=True)
    suite = dataclasses.replace(suite, peers=())   # only the variants named here
    run_sweep(suite, tmp_path, target)
    records = {(r["distribution"], r["variant"]): r
               for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    assert records["no_causal", "unguarded"]["status"] == "crashed"
    assert "CUTLASS" in records["no_causal", "unguarded"]["error"]
    for (dist, variant), r in records.items():
        if (dist, variant) == ("no_causal", "unguarded"):
            continue
        assert r["status"] == "ok", r["error"]
        assert r["device"] == "cuda" and r["bytes"]["peak_memory"] > 0
        assert r["timing_mode"] == "gpu" and r["gpu_method"] == "held", r["timing_note"]
        graph = r["timings_ms"]["graph_fwd_bwd"]
        assert "error" not in graph, graph
        assert graph == r["timings_ms"]["graph"]["fwd_bwd"]
        # a graph replay removes launch overhead; it cannot take much longer than eager forward+backward
        eager = r["timings_ms"]["eager"]["fwd_bwd"]["median"]
        assert 0 < graph["median"] < 1.5 * eager
        assert len(r["samples_ms"]["graph_backward"]) == len(r["samples_ms"]["backward"]) == r["repetitions"]
    zeros, passthrough = records["sft_long_prompt", "zeros_always"], records["sft_long_prompt", "guarded_passthrough"]
    assert zeros["timings_ms"]["phases"]["bwd.zero_fill"]["median"] > passthrough["timings_ms"]["phases"]["bwd.zero_fill"]["median"]


def _fa3_target():
    target = resolve_target("auto", "cuda")
    if target.backend != "fa3":
        pytest.skip("FA3 did not load")
    return target


def _records(path):
    return [Record.from_json(json.loads(line)) for line in (path / "results.jsonl").read_text().splitlines()]


def test_gpu_mode_records_gpu_time_below_eager_and_the_host_overhead(tmp_path):
    target = _fa3_target()
    suite = load_suite("default").with_overrides(
        distributions=["sft_long_prompt"], tokens=[16384], variants=["guarded_passthrough", "prefix_rows_add"],
        min_reps=20, max_reps=100, target_rel_ci=0.005, time_cap_s=5.0, phase_reps=2, mode="gpu")
    suite = dataclasses.replace(suite, peers=())   # only the variants named here
    run_sweep(suite, tmp_path, target)
    records = _records(tmp_path)
    assert [r.status for r in records] == ["ok", "ok"], [r.error for r in records]
    for r in records:
        assert r.timing_mode == "gpu" and r.gpu_method == "held" and r.timing_note is None
        gpu, eager = r.stat("gpu.fwd_bwd"), r.stat("eager.fwd_bwd")
        assert r.timings_ms.forward == r.stat("gpu.forward")
        assert gpu.median < eager.median * 1.01, (gpu, eager)          # eager waits for the host; gpu does not
        assert r.host_overhead_ms["fwd_bwd"].n == r.repetitions // 2          # paired over rounds 2k, 2k+1
        assert r.host_overhead_ms["fwd_bwd"].median > -0.02 * gpu.median
        assert len(r.samples_ms["eager_forward"]) == len(r.samples_ms["forward"])
    assert "behind a stream hold" in records[0].bandwidth["method"]


def test_graph_replays_interleaved_agree_for_identical_gpu_work(tmp_path):
    """guarded_zero_fill and guarded_passthrough launch the same kernels on a batch with causal tokens."""
    target = _fa3_target()
    suite = load_suite("default").with_overrides(
        distributions=["sft_long_prompt"], tokens=[16384], variants=["guarded_zero_fill", "guarded_passthrough"],
        min_reps=20, max_reps=200, target_rel_ci=0.005, time_cap_s=6.0, phase_reps=0, cuda_graph=True)
    suite = dataclasses.replace(suite, peers=())   # only the variants named here
    run_sweep(suite, tmp_path, target)
    by = {r.variant: r for r in _records(tmp_path)}
    a, b = by["guarded_zero_fill"], by["guarded_passthrough"]
    assert a.ok and b.ok and not a.timings_ms.clock_errors and not b.timings_ms.clock_errors

    def fwd_bwd(r):
        return [f + g for f, g in zip(r.samples_ms["graph_forward"], r.samples_ms["graph_backward"])]

    ratio = median([x / y for x, y in zip(fwd_bwd(a), fwd_bwd(b))])     # paired by round
    assert abs(ratio - 1) < 0.01, (ratio, a.stat("graph.fwd_bwd"), b.stat("graph.fwd_bwd"))
    assert abs(a.stat("graph.fwd_bwd").median / b.stat("graph.fwd_bwd").median - 1) < 0.01
