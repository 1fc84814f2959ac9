"""A user's files: read and hashed once per sweep, never silently biased, and remembered by the run directory.

A `batches:` file is parsed once however many configurations it gives (a dry run scales with its lines,
not their square); rows longer than the token budget are named on stderr and counted in the record;
run.json keeps each input's absolute path and SHA-256, and a resume refuses an input edited since.
"""
from __future__ import annotations

import json
from dataclasses import replace
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run.sweep import resolve_target, run_sweep
from bench.run.sweep_command import sweep_command
from bench.spec import distributions
from bench.spec.distributions import get_distribution
from bench.spec.errors import UserError
from bench.spec.grid import GridFlags, load_suite
from bench.spec.packing import batch_summary, budget_notice, pack

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(tokens=[128], heads=[1], head_dims=[16], dtypes=["float32"], context=64, warmup=0, min_reps=3,
            max_reps=3, time_cap_s=0.3, phase_reps=1)
CPU = resolve_target("reference", "cpu")


def write_batches(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prefix_lens": [10 + i % 7, 5], "causal_lens": [3, i % 4]}) + "\n"
                            for i in range(n)))
    return path


def dry_run_seconds(path: Path) -> float:
    flags = GridFlags(variants=("prefix_rows_add",), distributions=(f"batches:{path}",), heads=(1,), head_dims=(16,),
                      dtypes=("float32",), context=64, backends=("reference",), device="cpu")
    start = time.perf_counter()
    summary = sweep_command(path.parent / "out", "smoke", flags, dry_run=True, notify=lambda line: None)
    assert len({c.config_id for c in summary.configs}) == len(summary.configs)
    return time.perf_counter() - start


def test_batches_file_dry_run_scales_linearly(tmp_path):
    small = dry_run_seconds(write_batches(tmp_path / "small.jsonl", 1000))
    big = dry_run_seconds(write_batches(tmp_path / "big.jsonl", 8000))
    assert big < 8.0, f"8,000 batches took {big:.1f} s to dry-run"     # 100,000 lines: about 6 s here
    assert big < 8 * small * 3, f"1,000 lines: {small:.2f} s, 8,000 lines: {big:.2f} s (not linear)"


def test_batches_file_is_read_once_per_sweep(tmp_path, monkeypatch):
    path = write_batches(tmp_path / "b.jsonl", 300)
    reads = []
    real = distributions._parse_batches
    monkeypatch.setattr(distributions, "_parse_batches", lambda p, data: reads.append(p) or real(p, data))
    dry_run_seconds(path)
    assert len(reads) == 1
    path.write_text(path.read_text() + json.dumps({"prefix_lens": [1], "causal_lens": [1]}) + "\n")
    assert get_distribution(f"batches:{path}#301").batch == ((1,), (1,))      # an edit is seen
    assert len(reads) == 2


def test_rows_longer_than_the_budget_are_named_and_counted(tmp_path):
    lens = tmp_path / "lens.csv"
    lens.write_text("prefix_len,causal_len\n" + "".join(f"{40 + i % 3},{i % 5}\n" if i % 2 else f"{1100 + i % 50},10\n"
                                                        for i in range(2000)))
    spec = f"file:{lens}"
    assert budget_notice(spec, 1024) == (f"{spec}: 1,000 of 2,000 rows are longer than the 1,024-token budget: "
                                         "raise --tokens, or the sample is biased")
    assert budget_notice(spec, 4096) is None
    assert budget_notice("sft_long_prompt", 64) is None
    batch = pack(get_distribution(spec), 1024, 0, context=4096)
    assert batch.unplaced > 0 and max(p + c for p, c in zip(batch.prefix_lens, batch.causal_lens)) < 1024
    assert batch_summary(batch)["unplaced_seqs"] == batch.unplaced
    proc = subprocess.run([sys.executable, "-m", "cli", "sweep", "--dry-run", "--variant", "prefix_rows_add",
                           "--distribution", spec, "--tokens", "1024", "--context", "4096", "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1,000 of 2,000 rows are longer than the 1,024-token budget" in proc.stderr


def test_run_json_keeps_absolute_paths_and_hashes_and_a_changed_input_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    lens = data / "lens.csv"
    lens.write_text("prefix_len,causal_len\n20,5\n30,10\n12,0\n")
    monkeypatch.chdir(data)
    out = tmp_path / "run"
    flags = GridFlags.of(variants=["prefix_rows_add"], distributions=["file:lens.csv"], **TINY)
    first = sweep_command(out, "smoke", flags, isolation="none", notify=lambda line: None)
    assert first.records and all(r.status == "ok" for r in first.records)
    saved = json.loads((out / "run.json").read_text())
    assert saved["suite"]["distributions"] == [f"file:{lens}"]
    assert saved["inputs"][f"file:{lens}"]["path"] == str(lens)
    assert len(saved["inputs"][f"file:{lens}"]["sha256"]) == 64
    monkeypatch.chdir(tmp_path)                          # a resume from elsewhere finds the input
    again = sweep_command(out, None, GridFlags(), resume=True, isolation="none", notify=lambda line: None)
    assert again.skipped_configs == 1
    lens.write_text("prefix_len,causal_len\n21,5\n30,10\n")
    with pytest.raises(UserError, match=r"--resume: an input changed .*lens\.csv changed \(sha256 .*"
                                         r"--allow-changed"):
        sweep_command(out, None, GridFlags(), resume=True, isolation="none", notify=lambda line: None)
    notices = []
    allowed = sweep_command(out, None, GridFlags(), resume=True, isolation="none", notify=notices.append,
                            allow_changed_inputs=True)
    assert allowed.records and any("measuring its new contents" in n for n in notices)
    resaved = json.loads((out / "run.json").read_text())
    assert resaved["inputs"][f"file:{lens}"]["sha256"] != saved["inputs"][f"file:{lens}"]["sha256"]
    assert resaved["argv"] == saved["argv"]


def test_resume_of_a_missing_directory_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cli", "sweep", "--out", str(tmp_path / "nope"), "--resume",
                           "--device", "cpu", "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"prefixbench: error: --resume: {tmp_path / 'nope'} does not "
                                                "exist (nothing to resume; drop --resume to start a run there)"]
    assert not (tmp_path / "nope").exists()


def test_run_sweep_resume_refuses_a_changed_batches_file(tmp_path):
    path = write_batches(tmp_path / "b.jsonl", 2)
    suite = replace(load_suite("smoke").with_overrides(variants=["prefix_rows_add"], distributions=[f"batches:{path}"],
                                                       **TINY), tokens=())
    run_sweep(suite, tmp_path / "o", CPU, isolation="none")
    write_batches(path, 3)
    with pytest.raises(UserError, match="b.jsonl changed"):
        run_sweep(suite, tmp_path / "o", CPU, resume=True, isolation="none")
