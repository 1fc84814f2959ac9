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


def test_tick_labels_of_close_token_budgets_do_not_overlap() -> None:
    from plots.figures import spaced_tick_labels
    x = [4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    labels = spaced_tick_labels(x, [f"{t:g}k" for t in x])
    assert labels == ["4k", "", "16k", "32k", "64k", "128k"]     # 8k sits 3% of the span from 4k
    assert spaced_tick_labels([16.0, 64.0], ["16k", "64k"]) == ["16k", "64k"]


def test_scaling_figure_draws_unconverged_points_as_open_markers(tmp_path) -> None:
    from bench.results.records import Record
    from plots.figures import scaling_figure
    from plots.records import RunData

    def rec(variant, tokens, backward, converged):
        return Record.from_json({
            "config_id": f"sft/t{tokens}", "variant": variant, "distribution": "sft_long_prompt", "tokens": tokens,
            "status": "ok", "converged": converged, "batch": {"causal_tokens": 5},
            "timings_ms": {"forward": {"median": 1, "lo": 1, "hi": 1, "n": 4},
                           "backward": {"median": backward[0], "lo": backward[0], "hi": backward[0], "n": 4}},
            "samples_ms": {"forward": [1.0] * 4, "backward": backward}})
    records = [rec("zeros_always", 4096, [2.1, 2.2, 2.1, 2.2], True), rec("guarded_passthrough", 4096, [2.0] * 4, True),
               rec("zeros_always", 65536, [9.5, 9.9, 9.1, 9.7], False), rec("guarded_passthrough", 65536, [9.0] * 4, False)]
    fig = scaling_figure(RunData(records=records))
    assert fig is not None
    ax = fig.axes[0]
    open_lines = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    assert len(open_lines) == 1 and list(open_lines[0].get_xdata()) == [64.0]
    assert not any(t.get_text() == "not converged" for t in ax.texts)
