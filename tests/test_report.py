"""Report: figure data from synthetic records (values checked by hand), and the files `report` writes."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from plots import figure_data as fd
from plots.records import load_dirs

FIXTURE = Path(__file__).parent / "fixtures" / "records_sample"
_spec = importlib.util.spec_from_file_location("records_sample_generate", FIXTURE / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    gen.write(tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def data(sample_dir: Path):
    return load_dirs([sample_dir])


def test_hot_path_best_is_one_and_others_are_their_factor(data):
    cost = fd.hot_path_cost(data.records, gen.BEST)
    assert set(cost) == set(gen.DISTRIBUTIONS)
    for dist, per_variant in cost.items():
        assert set(per_variant) == set(gen.VARIANT_FACTOR)  # the crashed variant has no points
        for variant, points in per_variant.items():
            assert [p["tokens"] for p in points] == list(gen.TOKENS)
            for p in points:
                assert p["ratio"] == pytest.approx(gen.VARIANT_FACTOR[variant])
                assert p["lo"] <= p["ratio"] <= p["hi"]
        assert all(p["lo"] == p["hi"] == 1.0 for p in per_variant[gen.BEST])


def test_hot_path_baseline_is_fixed_across_configurations(data):
    cost = fd.hot_path_cost(data.records)            # the study's baseline, whichever variant is fastest
    assert all(p["ratio"] == 1.0 and p["baseline"] == "zeros_always" for per in cost.values()
               for p in per["zeros_always"])


def test_hot_path_interval_paired_vs_ratio_of_cis(data):
    cost = fd.hot_path_cost(data.records, gen.BEST)
    paired = cost["uniform"]["zeros_always"][0]  # extra_vs_best recorded: 1 + (extra +- 1 % of best) / best
    assert (paired["lo"], paired["hi"]) == (pytest.approx(1.49), pytest.approx(1.51))
    unpaired = cost["long_prefix"]["zeros_always"][0]  # ratio of the +-2 % intervals
    assert unpaired["lo"] == pytest.approx(1.5 * 0.98 / 1.02)
    assert unpaired["hi"] == pytest.approx(1.5 * 1.02 / 0.98)


def test_phase_segments_sum_to_backward(data):
    rows = fd.phase_breakdown(data.records)
    assert len(rows) == len(gen.DISTRIBUTIONS) * len(gen.TOKENS) * len(gen.VARIANT_FACTOR)
    for row in rows:
        bwd = gen.backward_ms(row["distribution"], row["tokens"], row["variant"])
        seg = row["segments_ms"]
        assert sum(seg.values()) == pytest.approx(bwd)
        assert seg["alloc + zero-fill"] == pytest.approx(0.11 * bwd)
        assert seg["other"] == pytest.approx(0.09 * bwd)


def test_scaling_floor_is_bytes_over_bandwidth(data):
    sc = fd.scaling(data.records)["uniform"]
    assert gen.BEST not in sc["floor"]  # fills nothing: no floor
    point = sc["floor"]["zeros_always"][1]
    zero_filled = point["tokens"] * gen.HEADS * gen.HEAD_DIM * 2 * 2 * 2
    assert point["floor_ms"] == pytest.approx(zero_filled / (gen.FILL_GBPS * 1e9) * 1e3)
    assert [p["median"] for p in sc["backward"][gen.BEST]] == pytest.approx([t / 1000 for t in gen.TOKENS])


def test_predicted_vs_measured_pairs(data):
    points = fd.predicted_vs_measured(data.records)
    assert len(points) == 12
    p = next(p for p in points if p["variant"] == "guarded_passthrough" and p["config_id"].startswith("long_prefix-T16384"))
    assert p["measured_ms"] == pytest.approx(16.384 * 1.5 * 0.2)
    assert p["predicted_ms"] == pytest.approx(16384 * gen.HEADS * gen.HEAD_DIM * 4 / (gen.FILL_GBPS * 1e9) * 1e3)


def test_boundary_matrix_worst_outcome(data):
    m = fd.boundary_matrix(data.validation)
    assert len(m["variants"]) == 4 and len(m["patterns"]) == 3
    cell = m["cells"][("unguarded", "all_prefix_no_causal_tokens")]
    assert cell["outcome"] == "crashed" and cell["expected_to_fail"]
    assert m["cells"][("prefix_rows_add", "mixed")]["outcome"] == "ok"
    rows = [{"variant": "v", "pattern": "p", "outcome": o} for o in ("ok", "wrong", "unwritten")]
    assert fd.boundary_matrix(rows)["cells"][("v", "p")] == {"outcome": "wrong", "cases": 3, "expected_to_fail": False}


def test_peers_rows(data):
    rows = fd.peers(data.records)
    assert len(rows) == 4
    names = {i["name"]: i for i in rows[0]["implementations"]}
    assert {"flex_attention", "sdpa_dense", gen.BEST} <= set(names)
    assert names["flex_attention"]["setup_ms"] == 1.5
    assert names["sdpa_dense"]["backward_ms"] == pytest.approx(3.0 * names[gen.BEST]["backward_ms"])


def _run_cli(*args: str):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)


def test_report_writes_markdown_html_and_figures(sample_dir, tmp_path):
    from typer.testing import CliRunner

    import cli
    out = tmp_path / "report"
    result = CliRunner().invoke(cli.app, ["report", str(sample_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    for name in ("hot_path_cost", "phases", "boundary", "peers"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
        assert f"(figures/{name}.png)" in md
    assert "uniform-T4096-h8-d128 / unguarded: crashed" in md
    assert "## Boundary validation" in md and "crashed (expected)" in md
    assert "FAILS" in md                                                  # the crash answer, as a failure
    assert "## Peers" in md and "flex_attention" in md
    assert "## Profile breakdown (nsys)" in md
    assert "| gpu | NVIDIA H100 80GB HBM3 |" in md
    assert "6.14 [6.02, 6.27]" in md  # long_prefix T4096 best backward, digits to its interval
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,iVBOR") == 4
    assert "<div class='scroll'><table>" in html                           # wide tables scroll in their box
    # the sample has no per-round samples: no paired saving, so no effect figure, and the report says so
    assert "figure 'The PR's saving per attention backward against tokens per batch' skipped" in md


def test_report_notes_reference_backend_and_skips_empty_figures(sample_dir, tmp_path):
    import json
    lines = (sample_dir / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    records = [r | {"backend": "reference", "prediction": None} for r in records if r.get("kind") == "variant"]
    for name in ("validation.jsonl", "breakdown.json", "env.json"):
        (sample_dir / name).unlink()
    (sample_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    from plots.report import build_report
    paths = build_report([sample_dir], tmp_path / "out")
    md = paths["markdown"].read_text()
    assert "CPU reference backend" in md
    assert "figure 'Measured hot-path saving against the byte model's prediction' skipped" in md
    assert "figure 'Batch patterns that fail some variant' skipped" in md
    assert "## Peers" not in md and "## Boundary validation" not in md
    assert not (tmp_path / "out" / "figures" / "boundary.png").exists()


def test_report_missing_results_exits_2_with_one_line(tmp_path):
    proc = _run_cli("report", str(tmp_path / "absent"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no results file" in proc.stderr


def test_multiple_dirs_merge_first_directory_wins(sample_dir, tmp_path):
    gen.write(tmp_path / "second")
    first = load_dirs([sample_dir]).records
    data = load_dirs([sample_dir, tmp_path / "second"])
    assert len(data.env) == 2
    assert data.records == first                      # the same keys again add nothing
    assert len(data.skipped_duplicates) == 21
    assert all(d == tmp_path / "second" for *_, d in data.skipped_duplicates)
    from plots.report import notes_for
    assert any("21 records of" in n and "skipped" in n for n in notes_for(data))


def test_multiple_dirs_merge_adds_new_implementations(sample_dir, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    rec = dict(load_dirs([sample_dir]).records[0].to_json(), variant="some_peer", kind="peer")
    (extra / "results.jsonl").write_text(json.dumps(rec) + "\n")
    data = load_dirs([sample_dir, extra])
    assert len(data.records) == 22 and not data.skipped_duplicates


def test_malformed_records_are_user_errors(tmp_path):
    from bench.spec.errors import UserError
    from plots.records import load_records
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.jsonl").write_text('{"config_id": "c", "variant": "v"}\n')
    with pytest.raises(UserError, match="lacks status"):
        load_records(bad)
    (bad / "results.jsonl").write_text("not json\n")
    with pytest.raises(UserError, match="no records"):
        load_records(bad / "results.jsonl")          # the bad line is read around; nothing is left
    assert (bad / "results.jsonl").read_text() == "not json\n" and not (bad / "results.jsonl.corrupt").exists()


def test_throttled_configurations_are_noted():
    from plots.report import throttle_notes
    rec = {"config_id": "c1", "variant": "a", "prediction": {"best_variant": "a"},
           "gpu_clocks": {"nvsmi.clocks_throttle_reasons.active": "0x0000000000000044", "nvsmi.clocks.sm": "1500"}}
    idle = {**rec, "config_id": "c2", "gpu_clocks": {"nvsmi.clocks_throttle_reasons.active": "0x0000000000000001"}}
    from bench.results.records import Record
    typed = [Record.from_json({"distribution": "d", "tokens": 1, "status": "error", **r})
             for r in (rec, idle, {"config_id": "c3", "variant": "a"})]
    notes = throttle_notes(typed)
    assert len(notes) == 1 and "c1" in notes[0]
    assert "software power cap" in notes[0] and "hardware thermal slowdown" in notes[0] and "1500" in notes[0]


@pytest.mark.parametrize("error", [None, "", "Traceback (most recent call last):\n  ...\nRuntimeError: " + "x" * 300])
def test_failed_peer_without_error_text_renders(data, error):
    from plots.report import peers_blocks
    from dataclasses import replace
    peer = next(r for r in data.records if r.kind == "peer")
    data.records.append(replace(peer, variant="broken_peer", status="error", error=error, timings_ms=None))
    failed = next(b for b in peers_blocks(data) if b[0] == "table" and b[1][-1] == "why")
    why = failed[2][0][3]
    assert failed[2][0][:3] == [peer.config_id, "broken_peer", "error"]
    assert why == ("" if not error else "x" * 200)  # the tail of the exception line: where it says what failed


def test_breakdown_kernels_are_counted(sample_dir, tmp_path):
    from plots.report import breakdown_blocks
    table = breakdown_blocks(load_dirs([sample_dir]))[1]
    assert ["zeros_always", "bwd.zero_fill", "0.4", "fill_kernel x2"] in table[2]


def test_read_jsonl_strict_names_the_line(tmp_path):
    from bench.results.io import read_jsonl
    from bench.spec.errors import UserError
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n[1]\n')
    with pytest.raises(UserError, match=r"r\.jsonl:3: expected a JSON object"):
        read_jsonl(path, strict=True)
    path.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(UserError, match=r"r\.jsonl:2: not JSON \("):
        read_jsonl(path, strict=True)
    assert read_jsonl(path) == [{"a": 1}]  # not strict (resume): a line cut by a kill is dropped


@pytest.mark.parametrize("name, text, message", [
    ("breakdown.json", "[]", "breakdown.json: expected a JSON object, got list"),
    ("env.json", '"x"', "env.json: expected a JSON object, got str"),
    ("validation.jsonl", '{"variant": "v", "pattern": "p"}\n', "validation.jsonl: row 1 lacks outcome"),
    ("validation.jsonl", '{"variant": "v", "pattern": "p", "outcome": "ok"}\n{}\n',
     "validation.jsonl: row 2 lacks variant, pattern, outcome"),
])
def test_malformed_side_files_are_user_errors(sample_dir, name, text, message):
    from bench.spec.errors import UserError
    (sample_dir / name).write_text(text)
    with pytest.raises(UserError, match=message):
        load_dirs([sample_dir])


def test_malformed_validation_exits_2_with_one_line(sample_dir, tmp_path):
    (sample_dir / "validation.jsonl").write_text('{"variant": "v", "pattern": "p"}\n')
    proc = _run_cli("report", str(sample_dir), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "row 1 lacks outcome" in proc.stderr
