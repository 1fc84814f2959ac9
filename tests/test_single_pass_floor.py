"""scripts/single_pass_floor.py: the FA3-paced floor of a single PrefixLM pass, from both bounds' rates."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.spec.grid import Config
from bench.harness.workloads import packed_batch
from prefixlm_attn.pair_counts import prefixlm_pair_counts

_spec = importlib.util.spec_from_file_location(
    "single_pass_floor", Path(__file__).resolve().parents[1] / "scripts" / "single_pass_floor.py")
spf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spf)

CONFIG = Config("uniform", 4096, 2, 64, "bfloat16", 0, 1024)


def _stat(m: float) -> dict:
    return {"median": m, "lo": m, "hi": m, "n": 3}


def _record(variant: str, kind: str, fwd: float, bwd: float, pairs: int, own_pairs: int | None = None) -> dict:
    rec = {"config_id": CONFIG.config_id, "variant": variant, "kind": kind, "status": "ok",
           "distribution": CONFIG.distribution, "tokens": CONFIG.tokens, "heads": CONFIG.heads,
           "head_dim": CONFIG.head_dim, "dtype": CONFIG.dtype, "seed": CONFIG.seed, "context": CONFIG.context,
           "batch": {"attended_pairs": pairs}, "timings_ms": {"forward": _stat(fwd), "backward": _stat(bwd)}}
    if own_pairs is not None:
        rec["notes"] = {"attended_pairs": own_pairs}
    return rec


def test_floor_prices_rectangles_at_the_bidirectional_rate_and_triangles_at_the_causal_rate(tmp_path: Path) -> None:
    batch = packed_batch(CONFIG)
    counts = prefixlm_pair_counts(batch.prefix_lens, batch.causal_lens)
    total = counts.passes["bidir"].exact + counts.passes["causal"].exact
    triangle = counts.passes["key_response"].exact
    assert 0 < triangle < total
    # bidirectional bound: 1e-6 ms per pair each way; causal bound: 2e-6 per pair (twice as slow per pair)
    recs = [_record("fa3_bidir_bound", "peer", 1.0, 1.0, total, own_pairs=1_000_000),
            _record("fa3_causal_bound", "peer", 1.0, 1.0, total, own_pairs=500_000),
            _record("single_pass", "variant", 1.2 * total * 1e-6, 1.2 * total * 1e-6, total),
            _record("key_split", "variant", 1.5 * total * 1e-6, 1.5 * total * 1e-6, total)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (row,) = spf.rows(tmp_path)
    floor = 2 * ((total - triangle) * 1e-6 + triangle * 2e-6)
    assert row["causal_rate"] == pytest.approx(2.0)
    assert row["triangle_share"] == pytest.approx(triangle / total)
    assert row["over_ideal"] == pytest.approx(1.2)
    assert row["over_floor"] == pytest.approx(2 * 1.2 * total * 1e-6 / floor)
    assert row["floor_over_ideal"] == pytest.approx(floor / (2 * total * 1e-6))
    assert row["two_pass"] == "key_split" and row["two_pass_over_single"] == pytest.approx(1.25)


def test_a_run_without_both_bounds_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps(_record("single_pass", "variant", 1.0, 1.0, 10)) + "\n")
    done = subprocess.run([sys.executable, spf.__file__, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "fa3_causal_bound" in done.stderr and done.stderr.count("\n") == 1
