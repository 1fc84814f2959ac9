"""The stopping rule also waits for a watched paired delta (the PR's), with a longer cap for long sequences."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.spec.errors import UserError
from bench.spec.grid import TimingOptions, load_suite
from bench.results.stats import StoppingRule
from bench.run.sweep import resolve_target, run_sweep


def test_rule_goes_on_until_the_delta_converges() -> None:
    rule = StoppingRule(min_reps=5, max_reps=100, target_rel_ci=0.05, time_cap_s=10.0, delta_rel_ci=0.05)
    a = [10.0 + 0.01 * (i % 3) for i in range(20)]                 # medians tight to 0.1%
    b = [9.9 + 0.05 * (i % 5) for i in range(20)]
    wide = [x - y for x, y in zip(a, b)]                            # a delta of ~0.1 +- 0.1: not settled
    assert rule.verdict([a, b], 1.0) == "converged"
    assert rule.verdict([a, b], 1.0, [wide]) is None
    assert rule.verdict([a, b], 11.0, [wide]) == "time_cap"
    assert rule.verdict([a, b], 1.0, [[0.1 + 0.001 * (i % 2) for i in range(20)]]) == "converged"


def test_long_sequences_get_the_longer_cap() -> None:
    t = TimingOptions(time_cap_s=6.0, time_cap_long_s=15.0, long_tokens=65536)
    assert (t.cap_for(16384), t.cap_for(65536), t.cap_for(131072)) == (6.0, 15.0, 15.0)
    assert TimingOptions(time_cap_s=6.0).cap_for(131072) == 6.0


def test_default_suite_watches_the_prs_delta() -> None:
    t = load_suite("default").timing
    assert t.watch_pairs == (("zeros_always", "guarded_passthrough"),) and t.watch_rel_ci == 0.05
    assert t.cap_for(65536) > t.cap_for(16384)


def test_bad_watch_pairs_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[axes]\nvariant = ["zeros_always"]\ndistribution = ["uniform"]\ntokens = [128]\n'
                   '[timing]\nwatch_pairs = ["zeros_always"]\n')
    with pytest.raises(UserError, match="watch_pairs must be a list of"):
        load_suite(str(bad))


def test_records_mark_whether_the_watched_delta_converged(tmp_path: Path) -> None:
    suite = load_suite("smoke").with_overrides(
        variants=["zeros_always", "guarded_passthrough", "prefix_rows_add"], distributions=["uniform"],
        tokens=[128], heads=[1], head_dims=[16], context=64, warmup=0, min_reps=3, max_reps=4, time_cap_s=0.3,
        phase_reps=1, watch_pairs=(("zeros_always", "guarded_passthrough"),))
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    recs = {r["variant"]: r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    mark = recs["zeros_always"]["watched_deltas"]["zeros_always-guarded_passthrough"]
    assert isinstance(mark["converged"], bool) and mark["target_rel_ci"] == 0.05
    assert recs["guarded_passthrough"]["watched_deltas"] == recs["zeros_always"]["watched_deltas"]
    assert "watched_deltas" not in recs["prefix_rows_add"]
