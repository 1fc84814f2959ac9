"""The paired delta's interval covers drift along the run: the spread between blocks of rounds widens it
where the delta moves, leaves it about as it was on independent rounds, turns a "faster" into "same"
when the drift reaches zero, reaches the report and the stopping rule, and spans runs that disagree."""
from __future__ import annotations

import importlib.util
import json
import random
import statistics
import sys
from pathlib import Path

import pytest

from bench.results.derived import paired_difference, paired_difference_within
from bench.results.stats import (MIN_BLOCK_PAIRS, MIN_BLOCKS, StoppingRule, block_ci, block_count, block_medians,
                                 median_ci, run_ci, t_975)
from bench.spec.study import load_study
from plots.deltas import Delta, across_runs, paired
from plots.first_screen import first_screen_blocks
from plots.records import load_dirs
from plots.verdict import build_verdict

ROOT = Path(__file__).resolve().parents[1]


def _width(s) -> float:
    return s.hi - s.lo


def _rounds(pair_deltas: list[float], base: float = 10.0) -> tuple[list[float], list[float]]:
    """Per-round samples a, b whose pairs of rounds give `pair_deltas` (both rounds of a pair alike)."""
    a, b = [], []
    for d in pair_deltas:
        a += [base + d, base + d]
        b += [base, base]
    return a, b


def test_block_count_and_blocks_follow_the_sample_count() -> None:
    assert block_count(MIN_BLOCKS * MIN_BLOCK_PAIRS - 1) == 0
    assert block_count(20) == 4 and block_count(100) == 10 and block_count(5000) == 20
    meds = block_medians(list(range(10)), 3)                 # 3 + 3 + 4 values, in run order
    assert meds == [1, 4, 7.5]
    assert block_ci(list(range(19))) is None and run_ci(list(range(19))) == median_ci(list(range(19)))
    assert t_975(4) == pytest.approx(2.776) and t_975(200) == pytest.approx(1.97, abs=0.01)


def test_the_block_interval_is_wider_on_drifting_data_and_about_equal_on_iid_data() -> None:
    rng = random.Random(4)
    n = 200
    ratios_iid, ratios_drift = [], []
    for _ in range(60):
        iid = [0.15 + rng.gauss(0, 0.02) for _ in range(n)]
        ratios_iid.append(_width(run_ci(iid)) / _width(median_ci(iid)))
        drift = [0.15 + 0.06 * (i / n - 0.5) + rng.gauss(0, 0.02) for i in range(n)]   # the delta creeps up
        ratios_drift.append(_width(run_ci(drift)) / _width(median_ci(drift)))
    assert 1.0 <= statistics.median(ratios_iid) < 1.25           # a hull: never narrower, barely wider
    assert statistics.median(ratios_drift) > 1.8
    assert min(ratios_drift) > 1.3


def test_drift_that_reaches_zero_turns_faster_into_same() -> None:
    levels = [0.3] * 7 + [-0.3] * 3                # the delta shifts level for three of ten blocks
    rng = random.Random(1)
    pairs = [lv + rng.gauss(0, 0.005) for lv in levels for _ in range(10)]
    a, b = _rounds(pairs)
    within, reported = paired_difference_within(a, b), paired_difference(a, b)
    assert within.lo > 0                                      # the order-statistic interval: a saving
    assert reported.lo < 0 < reported.hi                       # the block interval: no saving claimed
    d = paired(a, b)
    assert d.within == within and d.stat == reported and d.widening > 10
    assert Delta(within, d.pairs).status() == "faster" and d.status() == "same"


def _rec(variant: str, backward: list[float], dist: str = "uniform", tokens: int = 65536) -> dict:
    n = len(backward)
    return {"config_id": f"{dist}/t{tokens}", "variant": variant, "kind": "variant", "distribution": dist,
            "tokens": tokens, "heads": 16, "head_dim": 128, "status": "ok", "backend": "fa3", "device": "cuda",
            "batch": {"causal_tokens": 100},
            "timings_ms": {"forward": {"median": 1.0, "lo": 1.0, "hi": 1.0, "n": n},
                           "backward": {"median": 10.0, "lo": 9.9, "hi": 10.1, "n": n}},
            "samples_ms": {"forward": [1.0] * n, "backward": backward}}


def test_the_report_reads_the_block_interval_from_stored_samples() -> None:
    s = load_study()
    levels = [0.3] * 7 + [-0.3] * 3
    rng = random.Random(2)
    a, b = _rounds([lv + rng.gauss(0, 0.005) for lv in levels for _ in range(10)])
    verdict = build_verdict([_rec(s.baseline, a), _rec(s.merged, b)])
    (row,) = verdict.rows
    assert (row.saving.lo, row.saving.hi) == (paired_difference(a, b).lo, paired_difference(a, b).hi)
    assert row.saving_status == "same" and not row.converged
    hot = next(t for t in verdict.sentences if t.startswith("Hot path"))
    assert "saves" not in hot and "no difference beyond the noise in uniform 64k" in hot
    assert any(t.startswith("Widened by drift") and "uniform 64k" in t for t in verdict.sentences)
    table = next(blk for blk in first_screen_blocks(verdict)[0][1][0] if blk[0] == "table")
    assert table[2][0][3].startswith("same")                   # the first screen's status column


def test_the_stopping_rule_waits_for_a_drifting_delta() -> None:
    rule = StoppingRule(min_reps=5, max_reps=10_000, target_rel_ci=1.0, time_cap_s=1e9, delta_rel_ci=0.05)
    rng = random.Random(3)
    steady = [0.15 + rng.gauss(0, 0.002) for _ in range(100)]
    levels = [0.15] * 3 + [0.12] * 3 + [0.15] * 4                # three blocks of ten pairs run lower
    drifting = [lv + rng.gauss(0, 0.002) for lv in levels for _ in range(10)]
    series = [[1.0] * 200]
    assert rule.verdict(series, 0.0, [steady]) == "converged"
    assert median_ci(drifting).rel_ci <= 0.05                     # the order-statistic interval would stop
    assert rule.verdict(series, 0.0, [drifting]) is None


def test_runs_that_disagree_beyond_their_intervals_span_the_row(tmp_path: Path) -> None:
    s = load_study()
    rng = random.Random(5)

    def run(name: str, saving: float, spread: float, rounds: int) -> Path:
        recs = [_rec(s.baseline, [10.0 + saving + rng.gauss(0, spread) for _ in range(rounds)]),
                _rec(s.merged, [10.0 + rng.gauss(0, spread) for _ in range(rounds)])]
        d = tmp_path / name
        d.mkdir(parents=True)
        (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        return d

    tight = run("again/pr_delta", 0.150, 0.002, 400)
    other = run("review/sweep", 0.230, 0.01, 60)
    data = load_dirs([other, tight])
    (row,) = build_verdict(data.records, data.validation, runs=data.runs).rows
    assert row.saving_source == "again/pr_delta" and row.run_delta.settled
    assert row.saving_delta.runs == ("again/pr_delta", "review/sweep")
    theirs = dict(row.other_runs)["review/sweep"].stat
    assert row.saving.lo <= row.run_delta.stat.lo and row.saving.hi >= theirs.hi
    assert row.saving.median == row.run_delta.stat.median and not row.converged
    verdict = build_verdict(data.records, data.validation, runs=data.runs)
    note = next(t for t in verdict.sentences if "measured by several runs" in t)
    assert "do not overlap in uniform 64k" in note and "spans them" in note
    agree = across_runs(("x", row.run_delta), [("y", row.run_delta)])
    assert agree is row.run_delta                              # runs that overlap leave the delta as it was


def _script():
    spec = importlib.util.spec_from_file_location("run_agreement", ROOT / "scripts" / "run_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_agreement"] = mod
    spec.loader.exec_module(mod)
    return mod


def _disagreeing(comparisons, which: str) -> set[str]:
    return {c.config.split("/h")[0] for c in comparisons if c.disagreements(which)}


def test_committed_h100_runs_agree_within_the_block_interval_but_one() -> None:
    """docs/CLOCKS.md's numbers: the eager disagreements are drift inside review/sweep and go; the gpu
    clock's one at mixed_zero_causal 64k is a shift between runs, which no interval of one run sees."""
    ra = _script()
    pr = [("zeros_always", "guarded_passthrough")]
    runs = [ra.H100 / r for r in ("review/sweep", "pr_delta", "scaling")]
    gpu = ra.compare(runs, "gpu", pr)
    eager = ra.compare(runs, "eager", pr)
    assert sum(len(c.runs) * (len(c.runs) - 1) // 2 for c in gpu) == 16
    assert _disagreeing(gpu, "within") == _disagreeing(gpu, "reported") == {"mixed_zero_causal/t65536"}
    assert len(_disagreeing(eager, "within")) == 3 and _disagreeing(eager, "reported") == set()
    mixed = next(c for c in gpu if c.config.startswith("mixed_zero_causal/t65536"))
    review = next(m for m in mixed.runs if m.run == "review/sweep")
    assert ra.dispersion(review.pairs, review.within) < 1          # no drift inside that run
