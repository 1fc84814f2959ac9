"""plots/verdict.py: the verdict is computed from records, agrees with scripts/paired_difference.py,
and says "cannot answer" where the records cannot."""
from __future__ import annotations

import copy
import types
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from plots.records import load_dirs
from plots.verdict import build_verdict, to_markdown, to_terminal

ROOT = Path(__file__).resolve().parents[1]
RUN_C = ROOT / "results" / "h100" / "default_runC"
VALIDATE = ROOT / "results" / "h100" / "validate"
SAMPLE = ROOT / "tests" / "fixtures" / "records_sample"

_spec = importlib.util.spec_from_file_location("paired_difference", ROOT / "scripts" / "paired_difference.py")
pd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pd)


@pytest.fixture(scope="module")
def h100():
    loaded = load_dirs([RUN_C, VALIDATE])     # records as on disk (dicts), so tests can edit them
    return types.SimpleNamespace(records=[r.to_json() for r in loaded.records], validation=loaded.validation)


def _sentence(verdict, start: str, contains: str = "") -> str:
    (s,) = [s for s in verdict.sentences if s.startswith(start) and contains in s]
    return s


def _assert_same_as_script(run: Path, verdict) -> None:
    script = {(r["distribution"], r["tokens"]): r for r in pd.rows(run, "zeros_always", "guarded_passthrough")}
    assert script, "the script found no pairs"
    ours = {(r.distribution, r.tokens): r for r in verdict.rows if r.saving is not None}
    assert set(ours) == set(script)
    for key, s in script.items():
        row = ours[key]
        assert (row.saving.median, row.saving.lo, row.saving.hi) == (s["measured"].median, s["measured"].lo,
                                                                      s["measured"].hi)
        assert row.predicted == s["predicted"]


def test_numbers_equal_paired_difference_script_on_the_h100_run(h100) -> None:
    verdict = build_verdict(h100.records, h100.validation)
    _assert_same_as_script(RUN_C, verdict)
    assert len(verdict.rows) == 12
    row = next(r for r in verdict.rows if r.label == "sft_long_prompt 16k")
    assert row.saving_pct == pytest.approx(100 * row.saving.median / row.backward["zeros_always"]["median"])


def test_numbers_equal_paired_difference_script_on_the_sample_with_samples(tmp_path: Path) -> None:
    run = tmp_path / "sample"
    shutil.copytree(SAMPLE, run)
    recs = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    for i, r in enumerate(recs):            # give every ok variant round-aligned samples and a bandwidth probe
        if r["status"] == "ok" and r["kind"] == "variant":
            bwd = r["timings_ms"]["backward"]["median"]
            r["samples_ms"] = {"backward": [bwd * (1 + 0.01 * ((k * 7 + i) % 5 - 2)) + 0.001 * k for k in range(20)]}
            r["bandwidth"] = {"kv_bytes": 1 << 26, "fill_ms": {"median": 0.02, "lo": 0.019, "hi": 0.021},
                              "add_ms": {"median": 0.06, "lo": 0.058, "hi": 0.063}}
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    data = load_dirs([run])
    _assert_same_as_script(run, build_verdict(data.records, data.validation))


def test_sample_without_per_round_samples_cannot_answer_the_saving() -> None:
    data = load_dirs([SAMPLE])
    verdict = build_verdict(data.records, data.validation)
    assert all(r.saving is None for r in verdict.rows)
    assert any(s.startswith("Cannot answer what the PR saves: the records hold no per-round samples")
               for s in verdict.sentences)
    assert not any(s.startswith("Merge") for s in verdict.sentences)


def test_changing_one_record_changes_the_sentence(h100) -> None:
    before = build_verdict(h100.records, h100.validation)
    assert "12 faster, 0 slower, 0 same" in _sentence(before, "prefix_rows_add (", "a further")
    records = copy.deepcopy(h100.records)
    rec = next(r for r in records if r["variant"] == "prefix_rows_add" and r["distribution"] == "uniform"
               and r["tokens"] == 16384)
    rec["samples_ms"]["backward"] = [x + 1.0 for x in rec["samples_ms"]["backward"]]
    after = build_verdict(records, h100.validation)
    ours = _sentence(after, "prefix_rows_add (", "a further")
    assert "it is slower in uniform 16k (by " in ours and "in 11 of 12 configurations" in ours
    assert "11 faster, 1 slower, 0 same" in ours
    assert after.sentences != before.sentences


def test_the_hot_path_and_the_guard_branch_are_separate_sentences(h100) -> None:
    verdict = build_verdict(h100.records, h100.validation)
    hot = _sentence(verdict, "Hot path (batches with response tokens)")
    guard = _sentence(verdict, "Guard branch (no causal tokens)")
    hot_savings = [r.saving.median for r in verdict.hot_rows if r.saving_status == "faster"]
    assert f"{min(hot_savings):.3g} to {max(hot_savings):.3g} ms" in hot
    assert "no_causal" not in hot and "no_causal 16k, no_causal 64k" in guard
    first = _sentence(verdict, "guarded_zero_fill (")
    assert "0 faster, 2 slower" in first                                 # the two no_causal batches
    branch = _sentence(verdict, "Only batches with no causal tokens")
    assert "no_causal 16k, no_causal 64k" in branch


def test_missing_variant_says_it_cannot_answer(h100) -> None:
    without_base = [r for r in h100.records if r["variant"] != "zeros_always"]
    v = build_verdict(without_base, h100.validation)
    assert any(s.startswith("Cannot answer what the PR saves: no ok record of zeros_always") for s in v.sentences)
    assert all(r.saving is None for r in v.rows)
    without_ours = [r for r in h100.records if r["variant"] != "prefix_rows_add"]
    v = build_verdict(without_ours, h100.validation)
    assert any(s.startswith("Cannot answer what prefix_rows_add saves beyond the PR") for s in v.sentences)
    without_unguarded = [r for r in h100.records if r["variant"] != "unguarded"]
    v = build_verdict(without_unguarded, [])
    assert any(s.startswith("Cannot answer what the guard itself costs") for s in v.sentences)
    assert any(s.startswith("No validation rows") for s in v.sentences)


def test_cpu_reference_records_give_no_speed_verdict(h100) -> None:
    records = [dict(r, backend="reference", device="cpu") for r in h100.records]
    v = build_verdict(records, [])
    assert v.sentences[0].startswith("These records come from the reference backend on the CPU")
    assert not any(s.startswith(("Hot path", "prefix_rows_add (", "The guard itself")) for s in v.sentences)
    mixed = [dict(r, backend="reference", device="cpu") if r["distribution"] == "uniform" else r
             for r in h100.records]
    v = build_verdict(mixed, [])
    assert v.sentences[0].startswith("2 configurations ran on the reference backend")
    assert "uniform" not in _sentence(v, "Hot path")


def test_wide_deltas_are_marked_not_converged(h100) -> None:
    verdict = build_verdict(h100.records, h100.validation)
    row = next(r for r in verdict.rows if r.label == "prefix_fills_context 64k")
    assert row.converged is False and row.saving.rel_ci > 0.05
    note = _sentence(verdict, "Not settled")
    settled = [r.label for r in verdict.rows if r.converged]
    assert settled and "prefix_fills_context 64k" in note and not any(f"{s} (" in note for s in settled)
    assert f"no (+-{row.saving.rel_ci:.0%})" in to_markdown(verdict)


def test_crash_sentences_give_the_smallest_reproducer(h100) -> None:
    verdict = build_verdict(h100.records, h100.validation)
    merged = _sentence(verdict, "guarded_passthrough, guarded_zero_fill and zeros_always fail (crashed)")
    assert "on 3 of 22 batch patterns, every one a batch with no prefix tokens" in merged
    assert "smallest reproducer: prefix_lens [0], causal_lens [9]" in merged
    assert "prefix_rows_add passes all 22 batch patterns." in verdict.sentences
    assert _sentence(verdict, "unguarded fails (crashed) on 8 of 22").endswith("prefix_lens [1], causal_lens [0].")


def test_renderings_hold_the_table_mapping_and_sentences(h100) -> None:
    verdict = build_verdict(h100.records, h100.validation)
    md = to_markdown(verdict)
    assert md.startswith("## Verdict")
    assert "| configuration | guard branch | zeros_always | guarded_zero_fill |" in md
    assert "PR saving = zeros_always - guarded_passthrough, paired over pairs of rounds" in md
    assert "| guarded_zero_fill | PR #13, first commit" in md
    assert "Only batches with no causal tokens take the guard's branch" in md
    text = to_terminal(verdict)
    lines = text.splitlines()
    assert lines[0] == "Verdict (backward ms, medians)"
    table = lines[1:15]
    assert len({len(line) for line in table[:2]}) == 1                      # header and rule align
    assert not any("/t16384/" in line for line in table)                   # labels, not config ids
    assert "#13 = guarded_passthrough: PR #13 as merged" in text
    assert "* Hot path (batches with response tokens): guarded_passthrough vs zeros_always" in text


def test_a_variant_missing_from_validation_is_named() -> None:
    data = load_dirs([RUN_C, VALIDATE])
    rows = [v for v in data.validation if v["variant"] != "guarded_zero_fill"]
    verdict = build_verdict(data.records, rows)
    assert _sentence(verdict, "Not in the validation rows").endswith(": guarded_zero_fill.")
    assert not any("guarded_zero_fill" in s for s in verdict.sentences if "batch patterns" in s)
