"""The sweep records every configuration, survives crashes and hard worker deaths, and resumes."""
import json
import subprocess

import pytest

from bench.spec.grid import load_suite
from bench.harness.measure import TEST_DIE_ENV
from bench.run.sweep import resolve_target, run_sweep

TINY = dict(tokens=[128], heads=[1], head_dims=[16], dtypes=["float32"], context=64, warmup=0, min_reps=3,
            max_reps=4, time_cap_s=0.3, phase_reps=2)


def tiny_suite(**extra):
    return load_suite("smoke").with_overrides(**{**TINY, **extra})


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_have_the_schema_and_the_known_crash(tmp_path):
    suite = tiny_suite(distributions=["sft_long_prompt", "no_causal"])
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"))
    records = read(tmp_path / "results.jsonl")
    assert len(records) == 2 * 5
    by = {(r["distribution"], r["variant"]): r for r in records}
    crash = by["no_causal", "unguarded"]
    assert crash["status"] == "crashed" and "CUTLASS error" in crash["error"] and crash["timings_ms"] is None
    ok = by["sft_long_prompt", "zeros_always"]
    assert ok["status"] == "ok" and ok["backend"] == "reference" and ok["device"] == "cpu"
    for key in ("forward", "backward"):
        st = ok["timings_ms"][key]
        assert st["lo"] <= st["median"] <= st["hi"] and st["n"] >= 3
    assert {"bwd.zero_fill", "bwd.bidir_pass", "bwd.causal_pass", "bwd.accumulate"} <= set(ok["timings_ms"]["phases"])
    assert ok["stop_reason"] in ("converged", "time_cap", "max_reps")
    assert ok["bytes"]["zero_filled"] == 4 * 128 * 16 * 4       # dK1, dV1, dK2, dV2 of [128, 1, 16] float32
    assert ok["prediction"]["fill_gbps"] > 0 and "extra_ms_vs_best_measured" in ok["prediction"]
    best = ok["prediction"]["best_variant"]
    assert by["sft_long_prompt", best]["timings_ms"]["extra_vs_best"]["median"] == 0
    assert ok["batch"]["attended_pairs"] > 0 and ok["tflops"]["backward"] > 0
    # the other variants of the crashing configuration were still measured
    assert by["no_causal", "guarded_passthrough"]["status"] == "ok"
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["backend"] == "reference" and env["cpu_reference"] and "torch" in env


def test_in_process_sweep_recovers_after_the_reference_crash(tmp_path):
    suite = tiny_suite(distributions=["no_causal", "uniform"], variants=["unguarded", "prefix_rows_add"])
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    status = {(r["distribution"], r["variant"]): r["status"] for r in read(tmp_path / "results.jsonl")}
    assert status == {("no_causal", "unguarded"): "crashed", ("no_causal", "prefix_rows_add"): "ok",
                      ("uniform", "unguarded"): "ok", ("uniform", "prefix_rows_add"): "ok"}


def test_worker_dying_hard_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    suite = tiny_suite(distributions=["sft_long_prompt", "uniform"], variants=["zeros_always", "prefix_rows_add"])
    first = suite.configs()[0].config_id
    monkeypatch.setenv(TEST_DIE_ENV, f"{first}|zeros_always")     # the worker calls os._exit(9) there
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"))
    by = {(r["config_id"], r["variant"]): r for r in read(tmp_path / "results.jsonl")}
    died = by[first, "zeros_always"]
    assert died["status"] == "crashed" and "exit code 9" in died["error"]
    assert by[first, "prefix_rows_add"]["status"] == "ok"
    assert all(r["status"] == "ok" for (cid, _), r in by.items() if cid != first)


def test_resume_continues_the_saved_grid_and_refuses_another(tmp_path):
    suite = tiny_suite(distributions=["sft_long_prompt", "uniform"], variants=["prefix_rows_add"])
    from bench.spec.errors import UserError
    first = suite.configs()[0]
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    with pytest.raises(UserError, match="--resume"):
        run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    bigger = suite.with_overrides(distributions=["sft_long_prompt", "uniform", "no_causal"])
    with pytest.raises(UserError, match=r"--distribution sft_long_prompt,uniform -> sft_long_prompt,uniform,no_causal"):
        run_sweep(bigger, tmp_path, resolve_target("reference", "cpu"), resume=True, isolation="none")
    # drop the second configuration's record: resume measures exactly it
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").write_text(lines[0] + "\n")
    result = run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), resume=True, isolation="none")
    assert result.skipped_configs == 1 and [r.distribution for r in result.records] == ["uniform"]
    records = read(tmp_path / "results.jsonl")
    assert [r["distribution"] for r in records] == ["sft_long_prompt", "uniform"]
    assert records[0]["config_id"] == first.config_id


def test_a_line_cut_by_a_kill_is_moved_aside_and_rerun_on_resume(tmp_path, capsys):
    suite = tiny_suite(distributions=["uniform", "no_causal"], variants=["prefix_rows_add"])
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    whole = read(tmp_path / "results.jsonl")
    text = (tmp_path / "results.jsonl").read_text()
    cut = text[: len(text) - len(text.splitlines()[-1]) // 2 - 1]          # the last line cut in half
    (tmp_path / "results.jsonl").write_text(cut)
    result = run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), resume=True, isolation="none")
    assert "unreadable line" in capsys.readouterr().err
    assert len(result.records) == 1 and result.records[0].distribution == "no_causal"
    again = read(tmp_path / "results.jsonl")                   # every line parses: nothing appended onto the fragment
    assert [(r["config_id"], r["variant"]) for r in again] == [(r["config_id"], r["variant"]) for r in whole]
    assert (tmp_path / "results.jsonl.corrupt").read_text() == cut.splitlines()[-1] + "\n"


def cli(*args):
    """The command line in this process (`cli.run`, as `prefixbench` runs it)."""
    from tests.cli_run import cli_in_process
    code, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.mark.parametrize("args, message", [
    (["--tokens", "0"], "--tokens 0: must be a positive integer"),
    (["--variant", "nope"], "unknown variant 'nope'"),
    (["--distribution", "file:/no/such.csv"], "does not exist"),
    (["--suite", "nope"], "suite 'nope' not found"),
    (["--backend", "fa3", "--device", "cpu"], "needs --device cuda"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, message):
    proc = cli("sweep", "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_out_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("")
    proc = cli("sweep", "--out", str(target), "--distribution", "uniform", "--tokens", "128")
    assert proc.returncode == 2 and "not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_dry_run_and_cpu_notice(tmp_path):
    proc = cli("sweep", "--dry-run")
    assert proc.returncode == 0 and "6 configurations x 5 implementations" in proc.stderr
    proc = cli("sweep", "--out", str(tmp_path), "--distribution", "uniform", "--variant", "prefix_rows_add",
               "--tokens", "128", "--min-reps", "3", "--max-reps", "3", "--no-progress", "--isolation", "none")
    assert proc.returncode == 0, proc.stderr
    assert "not GPU figures" in proc.stderr and "prefix_rows_add" in proc.stdout
    assert len(read(tmp_path / "results.jsonl")) == 1
