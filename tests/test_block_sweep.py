"""The transformer block in the sweep: `block:<variant>` measured in the same interleaved rounds, and the
verdict's share of a training step."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.spec.errors import UserError
from bench.harness.registry import check_suite
from bench.spec.grid import load_suite
from bench.run.sweep import resolve_target, run_sweep
from plots.records import load_dirs
from plots.verdict import build_verdict

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(distributions=["sft_long_prompt"], tokens=[128], heads=[2], head_dims=[16], dtypes=["float32"],
            context=64, warmup=0, min_reps=3, max_reps=3, time_cap_s=0.3, phase_reps=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("block")
    suite = load_suite("smoke").with_overrides(variants=["zeros_always", "guarded_passthrough"], block=True, **TINY)
    run_sweep(suite, out, resolve_target("reference", "cpu"), isolation="none")
    return out


def test_blocks_are_measured_in_the_same_rounds(run: Path) -> None:
    recs = {r["variant"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
    assert list(recs) == ["zeros_always", "guarded_passthrough", "block:zeros_always", "block:guarded_passthrough"]
    block = recs["block:guarded_passthrough"]
    assert block["status"] == "ok" and block["kind"] == "block" and block["tflops"] is None
    assert block["notes"]["block"]["hidden"] == 32 and block["notes"]["block"]["mlp_hidden"] == 128
    # the same rounds: as many samples as the bare op, and slower than it (it contains it)
    assert len(block["samples_ms"]["backward"]) == len(recs["guarded_passthrough"]["samples_ms"]["backward"])
    assert block["timings_ms"]["backward"]["median"] > 0
    assert recs["zeros_always"]["prediction"]["best_variant"] in ("zeros_always", "guarded_passthrough")


def test_verdict_gives_the_share_of_a_block_step(run: Path) -> None:
    from bench.results.stats import median
    records = load_dirs([run]).records
    row = build_verdict(records, layers=8).rows[0]
    block = next(r for r in records if r.variant == "block:guarded_passthrough")
    step = row.step
    assert step is not None and step.layers == 8
    assert step.step_ms == median([a + b for a, b in zip(block.samples_ms["forward"], block.samples_ms["backward"])])
    # on a GPU run (not the reference) the per-step sentence states the layers and marks the derived share
    gpu = [r.to_json() | {"backend": "fa3", "device": "cuda"} for r in records]
    sentences = build_verdict(gpu, layers=8).sentences
    assert any(s.startswith("Per training step of 8 layers") and "Derived = the attention delta" in s
               for s in sentences)


def test_block_flag_and_suite_key(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "sweep", "--suite", "smoke", "--block", "--dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "x 10 implementations" in proc.stdout + proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[axes]\nvariant = ["zeros_always"]\ndistribution = ["uniform"]\ntokens = [128]\n[run]\nblock = 1\n')
    with pytest.raises(UserError, match="block = 1"):
        check_suite(load_suite(str(bad)))


def test_peer_figure_data_leaves_out_whole_blocks() -> None:
    from bench.results.records import Record
    from plots.figure_data import peers

    def rec(variant, kind, ms):
        return Record.from_json({"config_id": "c/t16", "variant": variant, "kind": kind, "distribution": "uniform",
                                 "tokens": 16, "status": "ok",
                                 "timings_ms": {"forward": {"median": ms, "lo": ms, "hi": ms, "n": 3},
                                                "backward": {"median": ms, "lo": ms, "hi": ms, "n": 3}}})
    (row,) = peers([rec("prefix_rows_add", "variant", 1.0), rec("fa3_bidir_bound", "peer", 1.1),
                    rec("block:prefix_rows_add", "variant", 10.0)])
    assert [i["name"] for i in row["implementations"]] == ["prefix_rows_add", "fa3_bidir_bound"]
