"""scripts/paired_difference.py: paired per-round differences and the byte-model prediction it prints."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "paired_difference", Path(__file__).resolve().parents[1] / "scripts" / "paired_difference.py")
pd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pd)

KV = 64 << 20


def _record(variant: str, samples: list[float], zero_filled: int, added: int) -> dict:
    return {"config_id": "c/t16", "variant": variant, "status": "ok", "distribution": "uniform", "tokens": 16,
            "batch": {"causal_tokens": 5}, "timings_ms": {}, "samples_ms": {"backward": samples},
            "bytes": {"zero_filled": zero_filled, "added": added},
            "bandwidth": {"kv_bytes": KV, "fill_ms": {"median": 0.02, "lo": 0.019, "hi": 0.021},
                          "add_ms": {"median": 0.06, "lo": 0.058, "hi": 0.063}}}


def test_rows_pair_rounds_and_predict_from_bytes(tmp_path: Path) -> None:
    b = [1.0, 1.5, 1.1, 0.9, 1.2]
    a = [x + d for x, d in zip(b, [0.10, 0.12, 0.11, 0.09, 0.10])]      # drift cancels in the pairing
    recs = [_record("zeros_always", a, 4 * KV, 3 * KV), _record("guarded_passthrough", b, 2 * KV, 3 * KV),
            dict(_record("unguarded", b, 0, 0), status="crashed")]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (row,) = pd.rows(tmp_path, "zeros_always", "guarded_passthrough")
    assert row["measured"].median == pytest.approx(0.105)    # rounds (0, 1) and (2, 3) averaged; the 5th dropped
    p, lo, hi = row["predicted"]
    assert (p, lo, hi) == pytest.approx((2 * 0.02, 2 * 0.019, 2 * 0.021))   # two extra K/V-sized fills, no add
    assert pd.rows(tmp_path, "zeros_always", "unguarded") == []             # a failed record has no pair


def test_missing_run_or_pair_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys
    script = Path(pd.__file__)
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "absent")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no results file" in missing.stderr and missing.stderr.count("\n") == 1
    (tmp_path / "results.jsonl").write_text(json.dumps(_record("zeros_always", [1.0], 0, 0)) + "\n")
    unpaired = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert unpaired.returncode == 2 and "guarded_passthrough" in unpaired.stderr
