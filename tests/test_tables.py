"""plots/tables.py: the pivot table, results.csv, the glossary and the peak check."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from plots.records import load_dirs
from plots.tables import (GLOSSARY, Cell, exceeds_peak, flatten_record, peak_tflops, pivot, pivot_table,
                          pivot_terminal, tflops_cell, write_results_csv)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "records_sample"
RUN_C = ROOT / "results" / "h100" / "default_runC"


@pytest.fixture(scope="module")
def sample():
    return [r.to_json() for r in load_dirs([SAMPLE]).records]


def test_pivot_is_configurations_by_implementations(sample) -> None:
    p = pivot(sample)
    assert p.implementations == ["unguarded", "zeros_always", "guarded_passthrough", "prefix_rows_add",
                                 "flex_attention", "sdpa_dense"]
    assert [(label, metric) for label, metric, _ in p.rows][:2] == [("uniform 4k", "backward"), ("uniform 4k", "forward")]
    assert len(p.rows) == 4 * 2
    label, metric, cells = p.rows[0]
    by_impl = dict(zip(p.implementations, cells))
    rec = next(r for r in sample if r["config_id"] == "uniform-T4096-h8-d128" and r["variant"] == "zeros_always")
    assert by_impl["zeros_always"].median == rec["timings_ms"]["backward"]["median"]
    assert by_impl["unguarded"].full() == "crashed"
    headers, rows = pivot_table(p)
    assert headers[:2] == ["configuration", "ms"] and rows[0][3] == by_impl["zeros_always"].full()
    assert re.fullmatch(r"6\.14 \[6\.02, 6\.27\]", by_impl["zeros_always"].full())   # digits to the interval


def test_pivot_terminal_aligns_and_names_each_configuration_once(sample) -> None:
    text = pivot_terminal(pivot(sample))
    lines = text.splitlines()
    assert len(lines) == 2 + 8
    assert lines[2].startswith("uniform 4k") and lines[3].startswith(" ")      # forward row under its label
    assert "6.144 +-2.0%" in lines[2]
    assert Cell(2.0, 1.9, 2.1).compact() == "2 +-5.0%"


def test_unconverged_configurations_are_starred_in_both_tables(sample) -> None:
    recs = [dict(r) for r in sample]
    target = next(r for r in recs if r["config_id"] == "uniform-T4096-h8-d128" and r["variant"] == "zeros_always")
    target["converged"] = False
    cells = dict(zip(pivot(recs).implementations, pivot(recs).rows[0][2]))
    assert cells["zeros_always"].full().endswith("]*") and cells["zeros_always"].compact().endswith("%*")
    assert not cells["guarded_passthrough"].full().endswith("*")
    assert Cell(2.0, 1.9, 2.1, "ok", False).full() == "2.00 [1.90, 2.10]*"


def test_pivot_labels_show_shape_only_when_it_varies(sample) -> None:
    other = [dict(r, heads=16, config_id=r["config_id"] + "-h16") for r in sample if r["tokens"] == 4096]
    labels = {label for label, _, _ in pivot(sample + other).rows}
    assert "uniform 4k h8xd128" in labels and "uniform 4k h16xd128" in labels


def test_flatten_record_has_dotted_keys_and_no_nested_values() -> None:
    rec = load_dirs([RUN_C]).records[0].to_json()
    flat = flatten_record(rec)
    assert flat["timings_ms.backward.median"] == rec["timings_ms"]["backward"]["median"]
    assert flat["timings_ms.phases.bwd.zero_fill.lo"] == rec["timings_ms"]["phases"]["bwd.zero_fill"]["lo"]
    assert flat["prediction.extra_ms_vs_best_interval.1"] == rec["prediction"]["extra_ms_vs_best_interval"][1]
    assert not any(k.startswith("samples_ms") for k in flat)
    assert all(not isinstance(v, (dict, list, tuple)) for v in flat.values())

    @dataclass
    class Typed:
        config_id: str
        timings_ms: dict
    assert flatten_record(Typed("c", {"backward": {"median": 1.5}})) == {"config_id": "c",
                                                                         "timings_ms.backward.median": 1.5}


def test_results_csv_reads_back_one_row_per_record(tmp_path: Path, sample) -> None:
    path = write_results_csv(sample, tmp_path / "out" / "results.csv")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(sample)
    assert rows[0]["config_id"] == sample[0]["config_id"]
    assert float(rows[0]["timings_ms.backward.median"]) == sample[0]["timings_ms"]["backward"]["median"]
    crashed = next(r for r in rows if r["status"] == "crashed")
    assert crashed["timings_ms.backward.median"] == "" and crashed["error"] == "CUTLASS Error Internal"
    assert "setup_ms" in rows[0]                                   # a column only peers have is still there


def test_glossary_defines_the_terms_the_report_uses() -> None:
    for term in ("extra vs best", "phase events", "zero-fill floor", "outside phases", "paired difference",
                 "byte model", "converged", "GPU time", "eager", "graph", "host overhead", "ideal", "TF/s",
                 "PR saving", "guard cost"):
        assert term in GLOSSARY and len(GLOSSARY[term]) > 20
    report_text = (ROOT / "plots" / "figures.py").read_text() + (ROOT / "plots" / "report.py").read_text()
    for term in ("byte model", "extra"):
        assert term in report_text                                  # these terms really appear in the report


def test_peak_check_flags_impossible_throughput() -> None:
    assert peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert peak_tflops("cpu") is None
    assert exceeds_peak(1034.0, "NVIDIA H100 80GB HBM3") and exceeds_peak(1088.0, "NVIDIA H100 80GB HBM3")
    assert not exceeds_peak(620.7, "NVIDIA H100 80GB HBM3")
    assert not exceeds_peak(5000.0, None)                           # unknown GPU: no claim either way
    assert "not throughput" in tflops_cell(1034.0, "NVIDIA H100 80GB HBM3")
    assert tflops_cell(620.7, "NVIDIA H100 80GB HBM3") == "620.7"
