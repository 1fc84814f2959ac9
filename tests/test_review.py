"""`prefixbench review` end to end on the CPU reference: sweep, validate, the profile note, the report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run.review import run_review, settle_suites
from bench.spec.grid import load_suite
from bench.spec.study import load_study

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(distributions=["sft_long_prompt", "no_causal"], tokens=[128], heads=[1], head_dims=[16],
            dtypes=["float32"], context=64, warmup=0, min_reps=3, max_reps=3, time_cap_s=0.3, phase_reps=1)


def test_review_runs_every_step_into_one_directory(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_review(tmp_path, "smoke", isolation="none", log=lines.append, **TINY)
    assert list(result.wall_s) == ["sweep", "validate", "profile", "report"]   # the reference has no delta to settle
    assert (tmp_path / "sweep" / "results.csv").is_file()
    validation = [json.loads(x) for x in (tmp_path / "validate" / "validation.jsonl").read_text().splitlines()]
    assert {v["variant"] for v in validation} == set(load_study().variants)
    assert "unguarded" in {v["variant"] for v in validation}              # what the guard fixed is shown
    times = json.loads((tmp_path / "stage_times.json").read_text())
    assert times["wall_s"] == result.wall_s and times["total_s"] == round(sum(result.wall_s.values()), 1)
    assert result.stage_times().splitlines()[0] == "stage times:" and "total" in result.stage_times()
    assert any("no nsys profile: the review ran on the CPU" in line for line in lines)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "cannot answer which variant is faster" in md
    assert "every one a batch with no prefix tokens" in md            # the validation reached the verdict
    assert "no nsys profile" in md.split("### Notes")[1]
    saved = json.loads((tmp_path / "review.json").read_text())
    assert saved["wall_s"] == result.wall_s and saved["device"] == "cpu"
    assert "Verdict (backward ms, medians)" in result.summary


def test_review_bad_isolation_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "review", "--out", str(tmp_path), "--isolation", "x"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--isolation" in proc.stderr


def test_settle_runs_only_the_unsettled_pairs_within_the_budget() -> None:
    study = load_study()
    base = load_suite("default")
    todo = [("uniform", 65536), ("no_causal", 16384), ("uniform", 16384)]
    suites = settle_suites(base, todo, study, budget_s=30.0)
    assert [s.tokens for s in suites] == [(16384,), (65536,)]
    assert suites[0].distributions == ("no_causal", "uniform") and suites[1].distributions == ("uniform",)
    for s in suites:
        assert s.variants == (study.baseline, study.merged) and not s.peers and not s.block
        assert s.timing.watch_pairs == ((study.baseline, study.merged),)
        assert s.timing.cap_for(s.tokens[0]) == 10.0                     # 30 s over three configurations
    assert settle_suites(base, [], study, 30.0) == []
