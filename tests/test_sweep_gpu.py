"""The sweep on a GPU with FA3: CUDA-event timings, L2 flush and CUDA-graph replay, the known crash."""
import json

import pytest

from bench.grid import load_suite
from bench.sweep import resolve_target, run_sweep

pytestmark = pytest.mark.gpu


def test_fa3_sweep_with_l2_flush_and_cuda_graphs(tmp_path):
    target = resolve_target("auto", "cuda")
    if target.backend != "fa3":
        pytest.skip("FA3 did not load")
    suite = load_suite("default").with_overrides(
        distributions=["sft_long_prompt", "no_causal"], tokens=[4096], heads=[4], variants=[
            "unguarded", "zeros_always", "guarded_passthrough", "prefix_rows_add"],
        min_reps=5, max_reps=20, time_cap_s=2.0, phase_reps=3, l2_flush=True, cuda_graph=True)
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
        graph = r["timings_ms"]["graph_fwd_bwd"]
        assert "error" not in graph, graph
        # a graph replay removes launch overhead; it cannot take much longer than eager forward+backward
        eager = r["timings_ms"]["forward"]["median"] + r["timings_ms"]["backward"]["median"]
        assert 0 < graph["median"] < 1.5 * eager
    zeros, passthrough = records["sft_long_prompt", "zeros_always"], records["sft_long_prompt", "guarded_passthrough"]
    assert zeros["timings_ms"]["phases"]["bwd.zero_fill"]["median"] > passthrough["timings_ms"]["phases"]["bwd.zero_fill"]["median"]
