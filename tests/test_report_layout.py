"""report.md's order (verdict first, figures, tables, glossary, appendix), the mixed-runs warning,
provenance per configuration and the flag on throughput above the GPU's peak."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from plots.report import build_report

ROOT = Path(__file__).resolve().parents[1]
RUN_C = ROOT / "results" / "h100" / "default_runC"
VALIDATE = ROOT / "results" / "h100" / "validate"


@pytest.fixture(scope="module")
def report_md(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report")
    return build_report([RUN_C, VALIDATE], out)["markdown"].read_text()


def _pos(md: str, text: str) -> int:
    assert text in md, text
    return md.index(text)


def test_first_screen_is_title_and_the_four_answers(report_md: str) -> None:
    lines = report_md.splitlines()
    assert lines[0].startswith("# prefixbench report")
    first_table = next(line for line in lines if line.startswith("|"))
    assert first_table.startswith("| configuration | saving ms [95% CI] | % of bwd | status | run |")
    effect = _pos(report_md, "## The effect")
    for answer in ("### 1. What guarded_passthrough saves", "### 2. What the guard itself costs",
                   "### 3. Per training step", "### 4. Which batch patterns crash each variant"):
        assert _pos(report_md, answer) < effect
    assert _pos(report_md, "Hot path: batches with response tokens") < _pos(report_md, "Guard branch: no causal")
    # the crash of the PR's variants on no-prefix batches is an answer, not only a matrix cell
    assert _pos(report_md, "every one a batch with no prefix tokens") < effect
    assert _pos(report_md, "#13 = guarded_passthrough: PR #13 as merged (follow-up commit 428dfc5)") < effect
    # not-settled deltas are marked in the first table
    assert re.search(r"\| prefix_fills_context 64k \| .* \| (faster|same), \+-\d+% \|", report_md)


def test_sections_come_in_reading_order(report_md: str) -> None:
    order = ["## The effect", "## Verdict in full", "## All results: configurations x implementations",
             "## Boundary validation", "## Glossary", "## Appendix", "### Other figures",
             "### Provenance per configuration",
             "### Environment", "### Notes", "### Detail per configuration"]
    positions = [_pos(report_md, "\n" + h + "\n") if h.startswith("## ") else _pos(report_md, "\n" + h) for h in order]
    assert positions == sorted(positions)
    assert "| sft_long_prompt 16k | backward |" in report_md              # the pivot's first row
    assert "| crashed (expected) |" in report_md.split("## Glossary")[1]  # the glossary defines matrix terms


def test_provenance_names_the_run_directory_and_gpu(report_md: str) -> None:
    appendix = report_md.split("### Provenance per configuration")[1].split("###")[0]
    row = next(line for line in appendix.splitlines() if line.startswith("| sft_long_prompt/t16384"))
    assert str(RUN_C) in row and "NVIDIA H100 80GB HBM3" in row and "2.11.0+cu130" in row and "c3035556c66b" in row


def test_one_run_has_no_warning_two_runs_do(tmp_path: Path, report_md: str) -> None:
    assert "**Warning:**" not in report_md
    other = tmp_path / "other"
    other.mkdir()
    env = json.loads((RUN_C / "env.json").read_text()) | {"hostname": "elsewhere", "torch": "2.12"}
    (other / "env.json").write_text(json.dumps(env))
    lines = (RUN_C / "results.jsonl").read_text().splitlines()
    (other / "results.jsonl").write_text("".join(
        json.dumps(dict(json.loads(line), config_id=json.loads(line)["config_id"] + "/other")) + "\n"
        for line in lines[:5]))
    md = build_report([RUN_C, other], tmp_path / "out")["markdown"].read_text()
    warning = next(line for line in md.splitlines() if line.startswith("> **Warning:**"))
    assert "2 runs" in warning and "differ in host, torch" in warning
    assert md.index(warning) < md.index("| configuration | saving ms")


def test_throughput_above_the_peak_is_flagged_not_shown(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(RUN_C / "env.json", run / "env.json")
    recs = [json.loads(line) for line in (RUN_C / "results.jsonl").read_text().splitlines()][:5]
    peer = dict(recs[0], variant="fa3_bidir_bound", kind="peer", tflops={"forward": 1088.0, "backward": 500.0})
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs + [peer]))
    md = build_report([run], tmp_path / "out")["markdown"].read_text()
    peers = md.split("\n## Peers\n")[1].split("\n## ")[0]
    assert "1088 (above the 989 TF/s peak: not throughput)" in peers
    assert "1088.0" not in peers and "| 500.0 |" in peers


def test_each_figure_has_its_data_beside_it(tmp_path: Path) -> None:
    import csv

    from plots.records import load_dirs
    from plots.verdict import verdict_rows
    out = build_report([RUN_C, VALIDATE, ROOT / "results" / "h100" / "peers"], tmp_path)["figures"]

    def rows(name: str) -> list[dict]:
        with (out / f"{name}.csv").open() as fh:
            return list(csv.DictReader(fh))

    for name in ("effect", "byte_model", "hot_path_cost", "phases", "boundary", "peers"):
        assert (out / f"{name}.png").is_file() and rows(name), name
    saving = {(r["distribution"], int(r["tokens"])): r for r in rows("effect")}
    for v in verdict_rows(load_dirs([RUN_C]).records):
        r = saving[(v.distribution, v.tokens)]
        assert (float(r["saving_ms"]), float(r["lo"]), float(r["hi"])) == (v.saving.median, v.saving.lo, v.saving.hi)
        assert float(r["predicted_ms"]) == v.predicted[0]
    phases = rows("phases")
    zero = next(r for r in phases if r["segment"] == "alloc + zero-fill" and r["variant"] == "zeros_always")
    assert float(zero["lo_ms"]) <= float(zero["median_ms"]) <= float(zero["hi_ms"])
    sdpa = next(r for r in rows("peers") if r["name"] == "sdpa_dense")
    assert float(sdpa["backward_lo"]) <= float(sdpa["backward_ms"]) <= float(sdpa["backward_hi"])
    assert len(rows("boundary")) == len({(r["variant"], r["pattern"]) for r in
                                        load_dirs([RUN_C, VALIDATE]).validation})
    assert {r["panel"] for r in rows("effect")} == {"hot path", "guard branch"}


def test_a_far_longer_bar_clips_the_axis() -> None:
    from plots.figures import _clip_at
    assert _clip_at([1.0, 2.0, 2.7, 20.0]) == pytest.approx(1.35 * 2.7)
    assert _clip_at([1.0, 2.0, 2.7, 5.0]) is None


def test_colours_are_the_same_in_every_figure() -> None:
    from plots import figures
    from plots.palette import color
    assert figures.colors_for(["prefix_rows_add", "zeros_always"]) == figures.colors_for(["zeros_always",
                                                                                          "prefix_rows_add"])
    assert figures.colors_for(["sdpa_dense"])["sdpa_dense"] == color("sdpa_dense")
