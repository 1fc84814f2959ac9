"""A record's four parts (spec, samples, derived, environment) under one schema version; older files still read."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from bench.results import derived
from bench.results.records import PARTS, Record, record_part

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").rglob("results.jsonl"))


def test_every_key_lies_in_exactly_one_part():
    keys = [k for part in PARTS.values() for k in part]
    assert len(keys) == len(set(keys))
    on_disk = {f.name for f in fields(Record)} - {"extra", "gpu_clocks_recorded"}
    assert set(keys) == on_disk


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_records_load_and_write_back_unchanged(path):
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        rec = Record.from_json(obj, str(path))
        assert rec.to_json() == obj
        assert {**record_part(obj, "spec"), **record_part(obj, "samples"), **record_part(obj, "derived"),
                **record_part(obj, "environment"), **rec.extra} == obj


def test_derived_values_are_pure_functions_of_numbers():
    assert derived.tflops(1000, 2, 64, 1.0, 2.0) == {"forward": 4 * 128000 / 1e9, "backward": 10 * 128000 / 2e9}
    assert derived.ideal_ratios(100, 2.0, 4.0, 0.01, 0.02, "p") == {
        "fwd": 2.0, "bwd": 2.0, "fwd_bwd": 2.0, "ideal_fwd_ms": 1.0, "ideal_bwd_ms": 2.0, "peer": "p"}
    overhead = derived.host_overhead({"forward": [2.0] * 4, "backward": [3.0] * 4},
                                     {"forward": [1.0] * 4, "backward": [1.0] * 4})
    assert (overhead["forward"].median, overhead["backward"].median, overhead["fwd_bwd"].median) == (1.0, 2.0, 3.0)
