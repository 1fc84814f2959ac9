"""What a sweep leaves behind and prints: results.csv beside results.jsonl, then the pivot and the verdict."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from bench.spec.grid import load_suite
from bench.run.sweep import resolve_target, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(tokens=[128], heads=[1], head_dims=[16], dtypes=["float32"], context=64, warmup=0, min_reps=3,
            max_reps=4, time_cap_s=0.3, phase_reps=2)


def test_sweep_writes_results_csv_with_one_flat_row_per_record(tmp_path: Path) -> None:
    suite = load_suite("smoke").with_overrides(distributions=["sft_long_prompt", "no_causal"], **TINY)
    result = run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert result.csv_path == tmp_path / "results.csv"
    with result.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(records) == 10
    assert not any("{" in v or "[" in v for row in rows for k, v in row.items() if k != "error")
    for row, rec in zip(rows, records):
        assert (row["config_id"], row["variant"], row["status"]) == (rec["config_id"], rec["variant"], rec["status"])
        if rec["status"] == "ok":
            assert float(row["timings_ms.backward.median"]) == rec["timings_ms"]["backward"]["median"]
            assert "samples_ms.backward.0" not in row
    assert json.loads((tmp_path / "env.json").read_text())["date_utc"][:2] == "20"


def test_cli_sweep_prints_the_pivot_then_the_verdict(tmp_path: Path) -> None:
    from tests.cli_run import cli_in_process
    code, out, err = cli_in_process("sweep", "--suite", "smoke", "--out", str(tmp_path), "--distribution", "uniform",
                                    "--tokens", "128", "--heads", "1", "--head-dim", "16", "--context", "64",
                                    "--min-reps", "3", "--max-reps", "3", "--phase-reps", "1", "--no-progress",
                                    "--isolation", "none")
    assert code == 0, err
    pivot_lines = out.split("Verdict (backward ms, medians)")[0].splitlines()
    assert pivot_lines[1].split()[:3] == ["configuration", "ms", "unguarded"]
    assert pivot_lines[3].startswith("uniform 128    backward") and pivot_lines[4].lstrip().startswith("forward")
    assert "cannot answer which variant is faster" in out          # the CPU reference judges no speed
    assert "results.csv" in out and (tmp_path / "results.csv").is_file()
