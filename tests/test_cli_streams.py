"""Every command: results on stdout, progress and notices on stderr; --json where a machine reads the result;
choices listed in --help; bad input one line on stderr."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from bench.spec.errors import UserError
from prefixlm_attn.variants import VARIANTS

FIXTURE = Path(__file__).parent / "fixtures" / "records_sample"
TINY_AXES = ["--tokens", "256", "--heads", "2", "--head-dim", "32", "--dtype", "float32",
             "--distribution", "sft_long_prompt", "--backend", "reference", "--device", "cpu"]


def invoke(*args: str):
    """(exit code, stdout, stderr), the streams kept apart whatever the typer/click version."""
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:                             # click >= 8.2 keeps them apart already
        runner = CliRunner()
    result = runner.invoke(cli.app, list(args), env={"COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("records_sample_generate", FIXTURE / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.write(tmp_path / "run")
    return tmp_path / "run"


def test_variants_lists_variants_and_peers_on_stdout():
    code, out, err = invoke("variants")
    assert code == 0 and err == ""
    for name in [*VARIANTS, "flex_attention", "sdpa_dense", "fa3_causal_bound", "fa3_bidir_bound"]:
        assert name in out
    code, out, err = invoke("variants", "--json")
    peers = {e["name"]: e for e in json.loads(out) if e["kind"] == "peer"}
    assert code == 0 and err == "" and set(peers) == {"flex_attention", "sdpa_dense", "fa3_causal_bound",
                                                       "fa3_bidir_bound", "fa4_causal_bound", "fa4_bidir_bound"}
    assert all(p["needs"] and p["description"] for p in peers.values())
    assert "32768" in peers["sdpa_dense"]["needs"]


def test_sweep_dry_run_ids_on_stdout_plan_on_stderr():
    code, out, err = invoke("sweep", "--suite", "smoke", "--dry-run")
    assert code == 0
    assert "configurations x" in err and "configurations x" not in out
    ids = out.split()
    assert ids and all("/t" in i for i in ids)


def test_sweep_json_summary_on_stdout_notices_on_stderr(tmp_path):
    code, out, err = invoke("sweep", "--out", str(tmp_path), *TINY_AXES, "--variant", "prefix_rows_add",
                            "--min-reps", "3", "--max-reps", "3", "--no-progress", "--isolation", "none", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["results"] == str(tmp_path / "results.jsonl") and summary["device"] == "cpu"
    [rec] = summary["records"]
    assert rec["variant"] == "prefix_rows_add" and rec["status"] == "ok" and rec["backward_ms"] > 0
    assert "not GPU figures" in err and "not GPU figures" not in out


def test_sweep_table_on_stdout_labels_the_reference(tmp_path):
    code, out, err = invoke("sweep", "--out", str(tmp_path), *TINY_AXES, "--variant", "prefix_rows_add",
                            "--min-reps", "3", "--max-reps", "3", "--no-progress", "--isolation", "none")
    assert code == 0, err
    assert "reference (CPU)" in " ".join(out.split()) and "prefix_rows_add" in out and "records:" in out
    assert "prefix_rows_add" not in err


def test_validate_json_on_stdout(tmp_path):
    code, out, err = invoke("validate", "--out", str(tmp_path), "--random", "0", "--head-dim", "16",
                            "--isolation", "none", "--variant", "prefix_rows_add", "--no-probes",
                            "--backend", "reference", "--device", "cpu", "--json")
    summary = json.loads(out)
    assert code == (0 if summary["passed"] else 1)
    assert summary["cases"] == len((tmp_path / "validation.jsonl").read_text().splitlines())
    assert summary["backend"] == "reference" and summary["contract_probes"] is None
    assert err.startswith("validate: 1 variants x")


def test_validate_matrix_and_verdict_on_stdout(tmp_path):
    code, out, err = invoke("validate", "--out", str(tmp_path), "--random", "0", "--head-dim", "16",
                            "--isolation", "none", "--variant", "prefix_rows_add", "--no-probes",
                            "--backend", "reference", "--device", "cpu")
    assert code == 0, out + err
    assert "PASS" in out and "reference (CPU)" in " ".join(out.split()) and "PASS" not in err


def test_profile_table_on_stdout(tmp_path):
    code, out, err = invoke("profile", "--tool", "torch", "--out", str(tmp_path), *TINY_AXES, "--reps", "1",
                            "--warmup", "0", "--overhead-reps", "0", "--variant", "prefix_rows_add")
    assert code == 0, err
    assert "breakdown:" in out and "bwd.bidir_pass" in out and "reference (CPU)" in " ".join(out.split())
    assert "breakdown:" not in err
    assert json.loads((tmp_path / "breakdown.json").read_text())["variants"]["prefix_rows_add"]


def test_report_and_compare_on_stdout(sample_dir, tmp_path):
    code, out, err = invoke("report", str(sample_dir), "--out", str(tmp_path / "rep"))
    assert code == 0 and out.startswith("wrote ") and "wrote" not in err
    code, out, err = invoke("compare", str(sample_dir), str(sample_dir))
    assert code == 0 and "no regression" in out and "no regression" not in err
    code, out, err = invoke("compare", str(sample_dir), str(sample_dir), "--json")
    result = json.loads(out)
    assert code == 0 and result["regressions"] == 0 and result["rows"]
    assert all(not r["regressed"] for r in result["rows"])


def test_doctor_on_stdout(tmp_path):
    code, out, err = invoke("doctor", "--out", str(tmp_path))
    assert code in (0, 1) and err == ""
    assert out.strip().splitlines()[-1]


@pytest.mark.parametrize("command, args, message", [
    ("sweep", ["--variant", "nope"], "unknown variant 'nope'"),
    ("sweep", ["--peer", "nope"], "unknown peer 'nope'"),
    ("sweep", ["--distribution", "nope"], "unknown distribution 'nope'"),
    ("sweep", ["--dtype", "int8"], "--dtype must be one of"),
    ("sweep", ["--backend", "cudnn"], "unknown backend 'cudnn'"),
    ("validate", ["--device", "tpu"], "--device 'tpu'"),
    ("profile", ["--tool", "perf"], "--tool 'perf'"),
    ("compare", [".", ".", "--metric", "total"], "--metric must be one of"),
])
def test_a_choice_outside_the_list_is_one_user_error(command, args, message, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli.app, [command, *(["--out", str(tmp_path)] if command != "compare" else []), *args])
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_help_lists_the_choices():
    _, out, _ = invoke("sweep", "--help")
    for word in ("prefix_rows_add", "flex_attention", "sft_long_prompt", "frac:LO-HI", "file:PATH", "batches:PATH",
                 "bfloat16", "reference"):
        assert word in out, word
    _, out, _ = invoke("profile", "--help")
    assert "nsys" in out and "bwd.zero_fill" in out


def test_distribution_forms_pass_through(tmp_path):
    lengths = tmp_path / "lens.csv"
    lengths.write_text("prefix_len,causal_len\n100,20\n50,10\n")
    code, out, err = invoke("sweep", "--suite", "smoke", "--distribution", f"file:{lengths}", "--distribution",
                            "frac:0.2-0.4", "--dry-run")
    assert code == 0, err
    ids = out.split()   # a file: distribution is named by its content hash (file@<hash>)
    assert any(i.startswith(("file:", "file@")) for i in ids) and any(i.startswith("frac:") for i in ids)


def test_auto_backend_on_cuda_without_fa3_refuses(monkeypatch):
    import torch
    from bench.run.sweep import resolve_target
    from prefixlm_attn.backends import BACKENDS
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(BACKENDS["fa3"], "available", lambda: False)
    with pytest.raises(UserError) as exc:
        resolve_target("auto", "auto")
    assert "prefixbench doctor" in str(exc.value) and "--backend reference" in str(exc.value)
    assert resolve_target("reference", "cuda").backend == "reference"


def test_reference_on_gpu_is_labelled():
    from plots.console import backend_label
    assert backend_label("reference", "cuda") == "reference (GPU)"
    assert backend_label("reference", "cpu") == "reference (CPU)"
    assert backend_label("fa3", "cuda") == "fa3"
