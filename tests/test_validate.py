"""`prefixbench validate`: crashes are recorded, poison finds unwritten rows, bad input is one line."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import prefixlm_attn.variants as variants_mod
from bench.harness.contract_probes import run_probes
from bench.spec.errors import UserError
from bench.harness.patterns import catalogue, load_patterns, random_patterns
from bench.harness.accuracy import as_ranges
from bench.harness.validate import passed, run_validation, validate_case
from prefixlm_attn.metadata import build_batch_metadata

REPO = Path(__file__).resolve().parents[1]
BY_NAME = {p.name: p for p in catalogue()}
FIELDS = {"schema", "variant", "pattern", "prefix_lens", "causal_lens", "token_budget", "backend", "device",
          "dtype", "outcome", "details", "expected_to_fail"}


def _case(variant, pattern, **kw):
    return validate_case(variant, list(pattern.prefix_lens), list(pattern.causal_lens), pattern.token_budget,
                         head_dim=16, **kw)


def _no_zero_fill(plan, dout, q, k, v, out, lse_b, lse_c):
    """unguarded without the dK1/dV1 zero-fill: response rows of dK1 stay uninitialised."""
    dq = torch.empty_like(q)
    dk1, dv1, dk2, dv2 = (torch.empty_like(x) for x in (k, v, k, v))
    plan.bidir_backward(dout, q, k, v, out, lse_b, dq, dk1, dv1)
    plan.causal_backward(dout, q, k, v, out, lse_c, dq, dk2, dv2)
    variants_mod._zero_padding(plan.total, dq, dk1, dv1, dk2, dv2)
    dk1.add_(dk2)
    dv1.add_(dv2)
    return dq, dk1, dv1


def _skip_causal_dq(plan, dout, q, k, v, out, lse_b, lse_c):
    """prefix_rows_add whose dq comes from a zeroed buffer the causal pass never sees: wrong, not unwritten."""
    dq, dk, dv = variants_mod._prefix_rows_add(plan, dout, q, k, v, out, lse_b, lse_c)
    return torch.where(plan.row_is_prefix[:, None, None], dq, torch.zeros_like(dq)), dk, dv


@pytest.fixture
def temp_variant(monkeypatch):
    def register(name, body):
        spec = dataclasses.replace(variants_mod.VARIANTS["unguarded"], name=name, backward=body, recommended=True)
        monkeypatch.setitem(variants_mod.VARIANTS, name, spec)
        return name
    return register


def test_unguarded_crash_on_zero_causal_is_recorded(tmp_path):
    pattern = BY_NAME["all_zero_causal"]
    records = run_validation(["unguarded", "prefix_rows_add"], [pattern], "reference", "cpu", "float32",
                             tmp_path, head_dim=16, isolation="process")
    by_variant = {r["variant"]: r for r in records}
    assert by_variant["unguarded"]["outcome"] == "crashed"
    assert by_variant["unguarded"]["expected_to_fail"] is True
    assert "CUTLASS" in by_variant["unguarded"]["details"]["error_line"]
    assert by_variant["prefix_rows_add"]["outcome"] == "ok"   # the worker was replaced after the crash
    assert passed(records)


def test_prefix_rows_add_ok_on_every_pattern():
    for pattern in catalogue() + random_patterns(3, 8):
        result = _case("prefix_rows_add", pattern)
        assert result["outcome"] == "ok", (pattern, result)


def test_missing_zero_fill_is_unwritten(temp_variant):
    name = temp_variant("no_zero_fill", _no_zero_fill)
    result = _case(name, BY_NAME["single_both"])           # prefix 7, response 5: rows 7..11 of dK1
    assert result["outcome"] == "unwritten"
    assert result["details"]["unwritten_rows"]["dk"] == [[7, 12]]
    assert result["details"]["unwritten_rows"]["dv"] == [[7, 12]]


def test_broken_variant_is_wrong_and_fails_the_run(temp_variant, tmp_path):
    name = temp_variant("drops_causal_dq", _skip_causal_dq)
    records = run_validation([name], [BY_NAME["single_both"]], "reference", "cpu", "float32", tmp_path,
                             head_dim=16, isolation="none")
    assert records[0]["outcome"] == "wrong"
    assert records[0]["details"]["rel_err"]["dq"] > 1e-2
    assert not passed(records)


def test_poison_reaches_buffers_the_op_allocates(monkeypatch, temp_variant):
    """Without poisoning, fresh CPU buffers may read as zeros and hide the bug; poisoning must not."""
    name = temp_variant("no_zero_fill", _no_zero_fill)
    monkeypatch.setattr(torch, "empty_like", lambda *a, **kw: torch.zeros_like(*a, **kw))
    assert _case(name, BY_NAME["mixed_zero_causal"])["outcome"] == "unwritten"


def test_as_ranges():
    assert as_ranges([5, 1, 2, 3, 9]) == [[1, 4], [5, 6], [9, 10]]
    assert as_ranges([]) == []


def test_catalogue_builds_and_stays_small():
    for p in catalogue() + random_patterns(0, 50):
        build_batch_metadata(p.prefix_lens, p.causal_lens, p.token_budget)
        assert p.token_budget <= 256
    names = {p.name for p in catalogue()}
    assert {"all_zero_causal", "all_zero_prefix", "mixed_zero_causal", "exact_budget",
            "empty_sequence_middle", "empty_sequence_end", "prefix_fills_context"} <= names


@pytest.mark.parametrize("suffix,text", [
    (".json", '[{"name": "a", "prefix_lens": [3, 0], "causal_lens": [1, 2], "token_budget": 8}]'),
    (".jsonl", '{"name": "a", "prefix_lens": [3, 0], "causal_lens": [1, 2]}\n'),
    (".csv", "name,prefix_lens,causal_lens,token_budget\na,\"[3, 0]\",1 2,8\n"),
])
def test_load_patterns_formats(tmp_path, suffix, text):
    path = tmp_path / f"p{suffix}"
    path.write_text(text)
    [p] = load_patterns(path)
    assert (p.name, p.prefix_lens, p.causal_lens) == ("a", (3, 0), (1, 2))


@pytest.mark.parametrize("text", ['{"name": "a"', '[{"name": "a", "prefix_lens": [1]}]',
                                  '[{"name": "a", "prefix_lens": [1], "causal_lens": [1], "token_budget": 1}]'])
def test_load_patterns_errors(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(UserError):
        load_patterns(path)


def test_bad_patterns_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "x", "prefix_lens": [1, -2], "causal_lens": [1, 1]}]')
    proc = subprocess.run([sys.executable, "cli.py", "validate", "--out", str(tmp_path / "o"), "--patterns",
                           str(bad)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "negative" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_writes_records_and_passes(tmp_path):
    from cli import app
    out = tmp_path / "val"
    result = CliRunner().invoke(app, ["validate", "--out", str(out), "--random", "2", "--head-dim", "16",
                                      "--isolation", "none", "--variant", "unguarded",
                                      "--variant", "prefix_rows_add"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert len(records) == 2 * (len(catalogue()) + 2)
    for r in records:
        assert FIELDS <= set(r)
        assert r["outcome"] in ("ok", "wrong", "unwritten", "crashed")
    assert any(r["outcome"] == "crashed" and r["expected_to_fail"] for r in records)
    probes = json.loads((out / "contract_probes.json").read_text())
    assert probes["all_match_contract"]


def test_contract_probes_reference(tmp_path):
    report = run_probes(["reference"], tmp_path, head_dim=16, isolation="none")
    assert report["all_match_contract"]
    crash = [p for p in report["probes"] if p["pattern"] == "all_zero_causal" and p["pass"] == "causal"][0]
    assert crash["backends"]["reference"]["stages"]["backward"]["status"] == "crashed"


def test_resume_keeps_recorded_cases_and_runs_the_rest(tmp_path):
    """An interrupted validation continues with --resume; without it, results are never overwritten."""
    from bench.spec.errors import UserError
    from bench.harness.patterns import catalogue
    from bench.harness.validate import run_validation
    pats = catalogue()[:3]
    first = run_validation(["prefix_rows_add"], pats[:2], "reference", "cpu", "float32", tmp_path,
                           isolation="none")
    with pytest.raises(UserError, match="--resume"):
        run_validation(["prefix_rows_add"], pats, "reference", "cpu", "float32", tmp_path, isolation="none")
    records = run_validation(["prefix_rows_add"], pats, "reference", "cpu", "float32", tmp_path,
                             isolation="none", resume=True)
    assert [r["pattern"] for r in records] == [p.name for p in pats]
    assert records[:2] == first
    lines = (tmp_path / "validation.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_resume_refuses_records_it_cannot_read(tmp_path):
    import json
    from bench.spec.errors import UserError
    from bench.harness.patterns import catalogue
    from bench.harness.validate import run_validation
    (tmp_path / "validation.jsonl").write_text(json.dumps({"variant": "retired_variant", "pattern": "x",
                                                           "outcome": "ok"}) + "\n")
    with pytest.raises(UserError, match="retired_variant"):
        run_validation(["prefix_rows_add"], catalogue()[:1], "reference", "cpu", "float32", tmp_path,
                       isolation="none", resume=True)
