"""bench/suites/scaling.toml: the PR's two ends and ours over 4k-128k tokens of sft_long_prompt, accepted by the grid."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from bench.harness.registry import check_suite
from bench.spec.grid import SUITES_DIR, load_suite

ROOT = Path(__file__).resolve().parents[1]


def test_scaling_suite_covers_4k_to_128k_with_the_default_variants() -> None:
    suite = load_suite("scaling")
    check_suite(suite)
    assert suite.tokens == (4096, 8192, 16384, 32768, 65536, 131072)
    assert suite.distributions == ("sft_long_prompt",)
    assert suite.variants == ("zeros_always", "guarded_passthrough", "prefix_rows_add")
    assert set(suite.variants) <= set(load_suite("default").variants)
    assert (suite.heads, suite.head_dims, suite.dtypes) == ((16,), (128,), ("bfloat16",))
    assert len(suite.configs()) == 6
    # the transformer block is asked for, and the grid measures block:<variant> beside each variant
    assert tomllib.loads((SUITES_DIR / "scaling.toml").read_text())["run"]["block"] is True
    assert suite.block and suite.implementations()[-1] == "block:prefix_rows_add"


def test_scaling_dry_run_lists_its_grid() -> None:
    res = subprocess.run([sys.executable, "-m", "cli", "sweep", "--suite", "scaling", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "sft_long_prompt/t131072/h16/d128/bfloat16/ctx8192/s0" in res.stdout
    assert "6 configurations x 6 implementations" in res.stdout + res.stderr   # 3 variants + their blocks
