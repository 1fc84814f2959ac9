"""The verdict gives settled numbers or none: a status per delta, no saving in the noise, no interval
below a minimum of pairs, the settled run of several, hot path apart from the guard branch, the per-step
answer for a stated depth, the unguarded baseline in the crash answer, and roles from a study file."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from bench.spec.study import DEFAULT_STUDY, load_study
from bench.spec.errors import UserError
from plots.deltas import MIN_PAIRS, fmt_interval, paired
from plots.first_screen import crash_blocks, first_screen_blocks, step_blocks
from plots.records import load_dirs
from plots.verdict import build_verdict

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "records_sample"


def _rec(variant: str, dist: str, tokens: int, backward: list[float], causal: int = 100,
         forward: list[float] | None = None) -> dict:
    fwd = forward or [1.0] * len(backward)
    med = sorted(backward)[len(backward) // 2]
    return {"config_id": f"{dist}/t{tokens}", "variant": variant, "kind": "variant", "distribution": dist,
            "tokens": tokens, "heads": 16, "head_dim": 128, "status": "ok", "backend": "fa3", "device": "cuda",
            "batch": {"causal_tokens": causal},
            "timings_ms": {"forward": {"median": 1.0, "lo": 1.0, "hi": 1.0, "n": len(fwd)},
                           "backward": {"median": med, "lo": min(backward), "hi": max(backward), "n": len(backward)}},
            "samples_ms": {"forward": fwd, "backward": backward, "eager_forward": [x + 0.2 for x in fwd],
                           "eager_backward": [x + 0.3 for x in backward]}}


def _noisy(base: float, rounds: int, spread: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [base + rng.uniform(-spread, spread) for _ in range(rounds)]


def _pair(dist: str, tokens: int, saving: float, spread: float, rounds: int = 60, causal: int = 100,
          seed: int = 0, study=None) -> list[dict]:
    s = study or load_study()
    return [_rec(s.baseline, dist, tokens, _noisy(10.0 + saving, rounds, spread, seed), causal),
            _rec(s.merged, dist, tokens, _noisy(10.0, rounds, spread, seed + 1), causal)]


def _write_run(d: Path, records: list[dict]) -> Path:
    d.mkdir(parents=True)
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return d


def test_a_delta_whose_interval_contains_zero_is_same_and_never_saves() -> None:
    records = _pair("uniform", 16384, saving=0.0, spread=0.5) + _pair("sft_long_prompt", 16384, 0.3, 0.01, seed=3)
    verdict = build_verdict(records)
    same = next(r for r in verdict.rows if r.distribution == "uniform")
    assert same.saving.lo <= 0 <= same.saving.hi
    assert same.saving_status == "same"
    faster = next(r for r in verdict.rows if r.distribution == "sft_long_prompt")
    assert faster.saving_status == "faster"
    hot = next(s for s in verdict.sentences if s.startswith("Hot path"))
    assert "1 faster, 0 slower, 1 same" in hot
    saves = hot.split("it saves", 1)[1].split(";")[0]
    assert "sft_long_prompt 16k" in saves and "uniform" not in saves      # "saves" names only the faster row
    assert "no difference beyond the noise in uniform 16k" in hot


def test_below_the_minimum_of_pairs_there_is_no_interval_and_no_saving() -> None:
    rounds = 2 * (MIN_PAIRS - 1)
    records = _pair("uniform", 16384, saving=5.0, spread=0.01, rounds=rounds)
    row = build_verdict(records).rows[0]
    assert row.saving is None and row.saving_delta.pairs == MIN_PAIRS - 1
    assert row.saving_status == "too few pairs" and row.saving_pct is None
    hot = next(s for s in build_verdict(records).sentences if s.startswith("Hot path"))
    assert "saves" not in hot and f"fewer than {MIN_PAIRS} pairs of rounds" in hot
    assert paired([1.0] * 40, [0.5] * 40).stat is not None                # enough pairs: an interval


def test_digits_follow_the_interval() -> None:
    from bench.results.stats import Stat
    assert fmt_interval(Stat(0.236, -0.304, 0.56, 20)) == "0.24 [-0.30, 0.56]"
    assert fmt_interval(Stat(0.149, 0.139, 0.156, 20)) == "0.149 [0.139, 0.156]"


def test_two_runs_of_one_configuration_use_the_settled_one_and_name_it(tmp_path: Path) -> None:
    wide = _write_run(tmp_path / "review" / "sweep", _pair("uniform", 16384, 0.3, 0.6, rounds=40))
    tight = _write_run(tmp_path / "again" / "pr_delta", _pair("uniform", 16384, 0.3, 0.005, rounds=80, seed=7))
    for order in ([wide, tight], [tight, wide]):
        data = load_dirs(order)
        verdict = build_verdict(data.records, data.validation, runs=data.runs)
        row = verdict.rows[0]
        assert row.saving_source == "again/pr_delta" and row.converged
        assert [name for name, _ in row.other_runs] == ["review/sweep"]
        assert any("the settled one gives each delta (again/pr_delta)" in s for s in verdict.sentences)
        (table,) = [b for b in first_screen_blocks(verdict)[0][1][0] if b[0] == "table"][:1]
        assert table[2][0][-1] == "again/pr_delta"                         # the first screen names the run


def test_hot_path_and_guard_branch_rows_are_separate() -> None:
    records = (_pair("sft_long_prompt", 16384, 0.05, 0.005) + _pair("no_causal", 16384, 0.7, 0.005, causal=0, seed=5))
    verdict = build_verdict(records)
    assert [r.distribution for r in verdict.hot_rows] == ["sft_long_prompt"]
    assert [r.distribution for r in verdict.guard_rows] == ["no_causal"]
    hot = next(s for s in verdict.sentences if s.startswith("Hot path"))
    guard = next(s for s in verdict.sentences if s.startswith("Guard branch"))
    assert "no_causal" not in hot and "no_causal 16k" in guard
    left = first_screen_blocks(verdict)[0][1][0]
    tables = [b for b in left if b[0] == "table"]
    assert [row[0] for row in tables[0][2]] == ["sft_long_prompt 16k"]
    assert [row[0] for row in tables[1][2]] == ["no_causal 16k"]


def _with_block(layers_saving: float = 0.2) -> list[dict]:
    s = load_study()
    out = _pair("sft_long_prompt", 16384, 0.05, 0.002)
    out.append(_rec("block:" + s.baseline, "sft_long_prompt", 16384, _noisy(20.0 + layers_saving, 60, 0.01, 9)))
    out.append(_rec("block:" + s.merged, "sft_long_prompt", 16384, _noisy(20.0, 60, 0.01, 10)))
    return out


def test_the_per_step_row_follows_the_layer_flag() -> None:
    records = _with_block()
    v32, v16 = build_verdict(records, layers=32), build_verdict(records, layers=16)
    s32, s16 = v32.steps[0], v16.steps[0]
    assert s32.ms(s32.derived).median == pytest.approx(2 * s16.ms(s16.derived).median)
    assert s32.ms(s32.measured).median == pytest.approx(32 * s32.measured.stat.median)
    assert s32.pct(s32.derived) == pytest.approx(s16.pct(s16.derived))   # the share does not depend on depth
    head = step_blocks(v16)[0][2]
    assert head.startswith("3. Per training step of a 16-layer model") and "16 heads x 128" in head
    assert any(s.startswith("Per training step of 16 layers") for s in v16.sentences)
    rows = step_blocks(v32)[1][2]
    assert rows[0][1] == f"{32 * s32.step_ms:.1f}"
    assert "eager" in " ".join(step_blocks(v32)[1][1])


def test_the_validated_unguarded_baseline_appears_in_the_crash_answer() -> None:
    data = load_dirs([ROOT / "results" / "h100" / "default_runC", ROOT / "results" / "h100" / "validate"])
    verdict = build_verdict(data.records, data.validation)
    names = [c.variant for c in verdict.crashes]
    assert names[0] == "guarded_passthrough"                          # the merged one first
    assert names[-1] == "unguarded"
    rows = crash_blocks(verdict)[1][2]
    unguarded = next(r for r in rows if r[0].startswith("unguarded"))
    assert unguarded[1].startswith("FAILS 8 of 22")
    assert "unguarded baseline" in unguarded[0]
    without = [v for v in data.validation if v["variant"] != "unguarded"]
    notes = build_verdict(data.records, without).crash_notes
    assert any("unguarded was not validated" in n for n in notes)


def test_the_study_file_drives_the_verdict(tmp_path: Path) -> None:
    text = DEFAULT_STUDY.read_text()
    renamed = {"zeros_always": "old_fill", "guarded_passthrough": "new_skip", "guarded_zero_fill": "new_fill",
               "prefix_rows_add": "mine", "unguarded": "bare"}
    for old, new in renamed.items():          # the values and the [variants.*] tables, not the role keys
        text = text.replace(f'"{old}"', f'"{new}"').replace(f"[variants.{old}]", f"[variants.{new}]")
    path = tmp_path / "other_pr.toml"
    path.write_text(text.replace('name = "guard PR"', 'name = "another PR"'))
    study = load_study(path)
    assert (study.baseline, study.merged, study.ours) == ("old_fill", "new_skip", "mine")
    records = _pair("uniform", 16384, 0.3, 0.005, study=study)
    verdict = build_verdict(records, study=study)
    assert verdict.rows[0].saving_status == "faster"
    hot = next(s for s in verdict.sentences if s.startswith("Hot path"))
    assert "new_skip vs old_fill" in hot and "guarded_passthrough" not in hot
    default = build_verdict(records)                    # the default study does not know these names
    assert all(r.saving is None for r in default.rows)


def test_a_bad_study_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[roles]\nmerged = 'x'\n")
    with pytest.raises(UserError, match="lacks baseline"):
        load_study(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_study(tmp_path / "none.toml")


def test_the_effect_figure_has_a_hot_path_and_a_guard_branch_panel(tmp_path: Path) -> None:
    from plots.effect_figure import effect_caption, effect_figure
    records = (_pair("sft_long_prompt", 16384, 0.05, 0.005) + _pair("sft_long_prompt", 65536, 0.0, 0.5, seed=4)
               + _pair("no_causal", 16384, 0.7, 0.005, causal=0, seed=5))
    verdict = build_verdict(records)
    fig = effect_figure(verdict)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["hot path: batches with response tokens", "guard branch: no causal tokens"]
    open_markers = [ln for ln in fig.axes[0].get_lines() if ln.get_markerfacecolor() == "white"]
    assert len(open_markers) == 1 and list(open_markers[0].get_xdata()) == [64.0]   # the 'same' point
    assert any(ln.get_ydata()[0] == 0.0 for ln in fig.axes[0].get_lines())           # the fixed baseline
    caption = effect_caption(verdict)
    assert "hot path" in caption and "1 of 2 configurations beyond the noise" in caption


def test_report_layers_flag_reaches_the_first_screen(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import cli
    run = _write_run(tmp_path / "run", _with_block())
    shutil.copy(SAMPLE / "env.json", run / "env.json")
    out = tmp_path / "report"
    result = CliRunner().invoke(cli.app, ["report", str(run), "--out", str(out), "--layers", "12"])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert "### 3. Per training step of a 12-layer model" in md
    html = (out / "report.html").read_text()
    assert "<div class='grid'>" in html and "overflow-x:auto" in html
