"""Distance to the ideal: each variant's time over the PrefixLM pairs at FA3's bidirectional single-pass rate."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.spec.grid import load_suite
from bench.results.derived import IDEAL_PEER, fill_ideal
from bench.run.sweep import resolve_target, run_sweep
from plots.records import by_config, load_dirs
from plots.report import build_report

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "results" / "h100" / "peers"


def test_ideal_is_prefixlm_pairs_at_the_bidirectional_rate() -> None:
    group = next(g for g in by_config(load_dirs([PEERS]).records).values()
                 if g[0].distribution == "sft_long_prompt" and g[0].tokens == 16384)
    group = [dataclasses.replace(r) for r in group]
    fill_ideal(group)
    bound = next(r for r in group if r.variant == IDEAL_PEER)
    ours = next(r for r in group if r.variant == "prefix_rows_add")
    per_pair_bwd = bound.median("backward") / bound.notes["attended_pairs"]
    assert ours.ideal["bwd"] == pytest.approx(ours.median("backward") / (ours.batch["attended_pairs"] * per_pair_bwd))
    total = ours.median("forward") + ours.median("backward")
    ideal = (bound.median("forward") + bound.median("backward")) * ours.batch["attended_pairs"] / bound.notes[
        "attended_pairs"]
    assert ours.ideal["fwd_bwd"] == pytest.approx(total / ideal)
    assert 1.0 < ours.ideal["fwd_bwd"] < 1.5                      # the H100 run: a little above the ideal
    assert bound.ideal is None and all(r.ideal is None for r in group if r.kind == "peer")


def test_no_bound_no_ideal() -> None:
    group = [dataclasses.replace(r) for r in load_dirs([ROOT / "results" / "h100" / "default_runC"]).records[:5]]
    fill_ideal(group)
    assert all(r.ideal is None for r in group)


def test_the_sweep_records_it_and_the_report_draws_it(tmp_path: Path) -> None:
    suite = load_suite("smoke").with_overrides(distributions=["sft_long_prompt"], peers=[IDEAL_PEER], tokens=[128],
                                                heads=[1], head_dims=[16], context=64, warmup=0, min_reps=3,
                                                max_reps=3, time_cap_s=0.3, phase_reps=1)
    run_sweep(suite, tmp_path / "run", resolve_target("reference", "cpu"), isolation="none")
    recs = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    variants = [r for r in recs if r["kind"] == "variant"]
    assert variants and all(set(r["ideal"]) >= {"fwd", "bwd", "fwd_bwd"} for r in variants)
    md = build_report([tmp_path / "run"], tmp_path / "report")["markdown"].read_text()
    section = md.split("## Distance to the ideal")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| sft_long_prompt"))
    assert f"{variants[0]['ideal']['fwd_bwd']:.2f}x" in row


def test_the_default_suite_measures_the_bound() -> None:
    assert IDEAL_PEER in load_suite("default").peers
