"""compare: verdicts, exit codes (0 same, 1 regression named, 2 bad input) on synthetic records."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from plots.compare import FASTER, SAME_NOISE, SAME_THRESHOLD, SLOWER, compare_records, verdict_for

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "records_sample"
_spec = importlib.util.spec_from_file_location("records_sample_generate", FIXTURE / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
SLOW_CONFIG, SLOW_VARIANT = "long_prefix-T16384-h8-d128", "zeros_always"


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    gen.write(tmp_path / "base")
    return tmp_path / "base"


def _scaled_copy(src: Path, dst: Path, factor: float, config: str = SLOW_CONFIG, variant: str = SLOW_VARIANT) -> Path:
    """Copy of src's results with one record's backward Stat scaled by factor."""
    dst.mkdir(parents=True)
    lines = []
    for line in (src / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["config_id"] == config and rec["variant"] == variant:
            for k in ("median", "lo", "hi"):
                rec["timings_ms"]["backward"][k] *= factor
        lines.append(json.dumps(rec))
    (dst / "results.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def test_verdicts():
    assert verdict_for(1.02, 0.98, 1.06, 5) == SAME_NOISE
    assert verdict_for(1.03, 1.01, 1.05, 5) == SAME_THRESHOLD
    assert verdict_for(1.5, 1.4, 1.6, 5) == SLOWER
    assert verdict_for(0.7, 0.65, 0.75, 5) == FASTER


def test_interval_is_propagated(base_dir, tmp_path):
    new = _scaled_copy(base_dir, tmp_path / "new", 1.5)
    from plots.records import load_records
    rows = compare_records(load_records(base_dir), load_records(new))
    row = next(r for r in rows if (r.config_id, r.variant) == (SLOW_CONFIG, SLOW_VARIANT))
    assert row.ratio == pytest.approx(1.5)
    assert row.lo == pytest.approx(1.5 * 0.98 / 1.02) and row.hi == pytest.approx(1.5 * 1.02 / 0.98)
    assert row.verdict == SLOWER and row.regressed
    assert sum(r.regressed for r in rows) == 1


def test_same_dir_exits_0(base_dir):
    result = CliRunner().invoke(cli.app, ["compare", str(base_dir), str(base_dir / "results.jsonl")])
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output


def test_one_config_50pct_slower_exits_1_and_is_named(base_dir, tmp_path):
    new = _scaled_copy(base_dir, tmp_path / "new", 1.5)
    result = CliRunner().invoke(cli.app, ["compare", str(base_dir), str(new)])
    assert result.exit_code == 1, result.output
    regression = result.output.split("REGRESSION", 1)[1]
    assert f"{SLOW_CONFIG} / {SLOW_VARIANT}" in regression
    assert regression.count(" / ") == 1


def test_faster_is_not_a_regression_and_threshold_absorbs_small_changes(base_dir, tmp_path):
    faster = _scaled_copy(base_dir, tmp_path / "faster", 0.5)
    assert CliRunner().invoke(cli.app, ["compare", str(base_dir), str(faster)]).exit_code == 0
    slightly = _scaled_copy(base_dir, tmp_path / "slightly", 1.06)  # outside noise (+-4 %), within 10 %
    runner = CliRunner()
    assert runner.invoke(cli.app, ["compare", str(base_dir), str(slightly), "--threshold", "10"]).exit_code == 0
    assert runner.invoke(cli.app, ["compare", str(base_dir), str(slightly), "--threshold", "5"]).exit_code == 1


def test_forward_metric_ignores_backward_regression(base_dir, tmp_path):
    new = _scaled_copy(base_dir, tmp_path / "new", 1.5)
    result = CliRunner().invoke(cli.app, ["compare", str(base_dir), str(new), "--metric", "forward"])
    assert result.exit_code == 0, result.output


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_missing_dir_exits_2_with_one_line(base_dir, tmp_path):
    proc = _run_cli("compare", str(tmp_path / "missing"), str(base_dir))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_no_common_configurations_exits_2(base_dir, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    rec = json.loads((base_dir / "results.jsonl").read_text().splitlines()[0]) | {"config_id": "elsewhere"}
    (other / "results.jsonl").write_text(json.dumps(rec) + "\n")
    monkeypatch.setattr(sys, "argv", ["prefixbench", "compare", str(base_dir), str(other)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
