"""`prefixbench profile --tool torch` on CUDA: device kernels (not CPU ops) land in the op's phases."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli


@pytest.mark.gpu
def test_torch_tool_attributes_cuda_kernels_to_phases(tmp_path: Path) -> None:
    args = ["profile", "--tool", "torch", "--device", "cuda", "--backend", "auto", "--out", str(tmp_path),
            "--tokens", "4096", "--heads", "4", "--head-dim", "128", "--dtype", "bfloat16",
            "--distribution", "sft_long_prompt", "--variant", "zeros_always", "--variant", "guarded_passthrough",
            "--reps", "3", "--overhead-reps", "5"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    bd = json.loads((tmp_path / "breakdown.json").read_text())
    fill_kernels = {}
    for name, variant in bd["variants"].items():
        ranges = variant["ranges"]
        for phase in ("fwd.bidir_pass", "fwd.causal_pass", "bwd.zero_fill", "bwd.bidir_pass", "bwd.causal_pass",
                      "bwd.accumulate"):
            assert ranges[phase]["gpu_ms"] > 0, (name, phase)
            assert all(k["kind"] in ("kernel", "memset", "memcpy") for k in ranges[phase]["kernels"].values())
        fill_kernels[name] = sum(k["count"] for k in ranges["bwd.zero_fill"]["kernels"].values())
    assert fill_kernels["zeros_always"] == pytest.approx(2 * fill_kernels["guarded_passthrough"])
    assert bd["nvtx_overhead"]["clock"] == "cuda_events"
