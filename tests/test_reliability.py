"""Nothing lost, nothing silent: cut lines, resumed grids, one writer, bounds before work, clear errors."""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.spec.errors import UserError
from bench.spec.grid import load_suite
from bench.results.io import RecordFile, read_record_file
from bench.run.lock import LOCK_NAME, DirLock
from bench.run.sweep import resolve_target, run_sweep
from tests.cli_run import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(tokens=[128], heads=[1], head_dims=[16], dtypes=["float32"], context=64, warmup=0, min_reps=3,
            max_reps=4, time_cap_s=0.3, phase_reps=1)
TINY_FLAGS = ["--backend", "reference", "--device", "cpu", "--tokens", "128", "--heads", "1", "--head-dim", "16",
              "--dtype", "float32", "--context", "64", "--min-reps", "3", "--max-reps", "3", "--phase-reps", "1",
              "--warmup", "0", "--no-progress", "--isolation", "none"]
CPU = resolve_target("reference", "cpu")


def tiny_suite(**extra):
    return load_suite("smoke").with_overrides(**{**TINY, **extra})


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def keys(path: Path) -> list[tuple[str, str]]:
    return [(r["config_id"], r["variant"]) for r in read(path)]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process (`cli.run`, as `prefixbench` runs it): no interpreter start per call."""
    code, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), code, out, err)


def one_line_exit_2(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()          # notices (CPU fallback, the plan) may come first
    errors = [ln for ln in lines if ln.startswith("prefixbench: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and text in errors[0], proc.stderr


# 1. records are written whole; a cut line is moved aside by every reader


def test_a_full_disk_leaves_no_half_line(tmp_path, monkeypatch):
    sink = RecordFile(tmp_path / "results.jsonl")
    sink.append({"config_id": "a", "variant": "v", "status": "ok"})
    real_write = os.write

    def half_then_enospc(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("bench.results.io.os.write", half_then_enospc)
    with pytest.raises(UserError, match="the disk is full"):
        sink.append({"config_id": "b", "variant": "v", "status": "ok"})
    monkeypatch.undo()
    assert read(tmp_path / "results.jsonl") == [{"config_id": "a", "variant": "v", "status": "ok"}]


def test_report_and_compare_read_around_a_cut_line_and_never_write_into_their_input(full_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    text = (full_run / "results.jsonl").read_text() + '{"config_id": "x", "vari'
    (run / "results.jsonl").write_text(text)
    before = sorted(p.name for p in run.iterdir())
    for args in (["report", str(run), "--out", str(tmp_path / "report")], ["compare", str(full_run), str(run)],
                 ["compare", str(run), str(full_run)]):
        code, out, err = cli_in_process(*args)
        assert code == 0 and "unreadable line" in err and "skipped" in err, (args, out, err)
        assert (run / "results.jsonl").read_text() == text        # not moved, not rewritten
        assert sorted(p.name for p in run.iterdir()) == before     # no .corrupt beside it


def test_only_a_resuming_writer_repairs_a_cut_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"config_id": "a"}\n{"cut')
    warnings = []
    assert read_record_file(path, warn=warnings.append) == [{"config_id": "a"}]
    assert path.read_text().endswith('{"cut') and "skipped" in warnings[0]
    assert not (tmp_path / "results.jsonl.corrupt").exists()
    assert read_record_file(path, repair=True, warn=warnings.append) == [{"config_id": "a"}]
    assert path.read_text() == '{"config_id": "a"}\n' and "moved to" in warnings[1]
    assert (tmp_path / "results.jsonl.corrupt").read_text() == '{"cut\n'


# 2 + 5. resume continues the saved grid; a partly recorded configuration is measured again whole


def test_resume_without_flags_continues_the_saved_grid(tmp_path):
    args = ["sweep", "--out", str(tmp_path), *TINY_FLAGS, "--variant", "prefix_rows_add",
            "--distribution", "uniform", "--distribution", "no_causal"]
    assert cli(*args).returncode == 0
    path = tmp_path / "results.jsonl"
    whole = keys(path)
    path.write_text(path.read_text().splitlines()[0] + "\n")
    proc = cli("sweep", "--out", str(tmp_path), "--resume", "--no-progress", "--isolation", "none")
    assert proc.returncode == 0, proc.stderr
    assert keys(path) == whole                                 # the same 2 configurations, not the smoke suite
    refused = cli("sweep", "--out", str(tmp_path), "--resume", "--tokens", "256")
    one_line_exit_2(refused, "--tokens 128 -> 256")


def test_a_partly_recorded_configuration_is_measured_again_whole(tmp_path):
    suite = tiny_suite(distributions=["uniform"], variants=["zeros_always", "prefix_rows_add"])
    run_sweep(suite, tmp_path, CPU, isolation="none")
    path = tmp_path / "results.jsonl"
    first = read(path)
    path.write_text(json.dumps(first[0]) + "\n")               # as if killed between the two records
    result = run_sweep(suite, tmp_path, CPU, resume=True, isolation="none")
    assert [r.variant for r in result.records] == ["zeros_always", "prefix_rows_add"]
    after = read(path)
    assert keys(path) == [(r["config_id"], r["variant"]) for r in first]      # each once
    assert after[0]["samples_ms"] != first[0]["samples_ms"]    # superseded: both from the new round set
    best = {r["prediction"]["best_variant"] for r in after}
    assert len(best) == 1


def test_retry_failed_measures_failed_configurations_again(tmp_path):
    suite = tiny_suite(distributions=["uniform", "no_causal"], variants=["unguarded", "prefix_rows_add"])
    run_sweep(suite, tmp_path, CPU, isolation="none")
    path = tmp_path / "results.jsonl"
    assert run_sweep(suite, tmp_path, CPU, resume=True, isolation="none").records == []
    result = run_sweep(suite, tmp_path, CPU, resume=True, isolation="none", retry_failed=True)
    assert {r.distribution for r in result.records} == {"no_causal"}   # unguarded crashes there
    assert len(keys(path)) == len(set(keys(path))) == 4


# 3. compare notices missing data and mixed runs


def _write(dirpath: Path, records: list[dict]) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return dirpath


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    run_sweep(tiny_suite(distributions=["uniform", "sft_long_prompt", "no_causal"],
                         variants=["zeros_always", "prefix_rows_add"]), out, CPU, isolation="none")
    return out


def test_compare_exits_3_when_new_lacks_records(full_run, tmp_path):
    records = read(full_run / "results.jsonl")
    partial = _write(tmp_path / "partial", records[:3])         # one whole configuration, one implementation
    proc = cli("compare", str(full_run), str(partial))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "1 configurations only in BASE" in proc.stdout and records[4]["config_id"] in proc.stdout
    assert f"{records[3]['config_id']} / {records[3]['variant']}" in proc.stdout
    assert cli("compare", str(full_run), str(partial), "--allow-missing").returncode == 0
    extra = cli("compare", str(partial), str(full_run))         # NEW has more: listed, not a failure
    assert extra.returncode == 0 and "configurations only in NEW" in extra.stdout


def test_compare_refuses_mixed_runs_and_bad_thresholds(full_run, tmp_path):
    records = [{**r, "device": "cuda", "backend": "fa3"} for r in read(full_run / "results.jsonl")]
    gpu = _write(tmp_path / "gpu", records)
    one_line_exit_2(cli("compare", str(full_run), str(gpu)), "backend: reference -> fa3; device: cpu -> cuda")
    assert cli("compare", str(full_run), str(gpu), "--allow-mixed").returncode == 0    # the same numbers: same
    for bad in ("nan", "inf", "-1"):
        one_line_exit_2(cli("compare", str(full_run), str(full_run), "--threshold", bad), "--threshold")


# 4. one writer per directory


def test_a_live_lock_refuses_a_second_writer_and_a_stale_one_is_taken_over(tmp_path):
    from bench.run.lock import command_line
    suite = tiny_suite(distributions=["uniform"], variants=["prefix_rows_add"])
    me = {"pid": os.getpid(), "host": socket.gethostname(), "cmdline": command_line(os.getpid())}
    (tmp_path / LOCK_NAME).write_text(json.dumps(me))
    with pytest.raises(UserError, match=f"being written by pid {os.getpid()}") as refused:
        run_sweep(suite, tmp_path, CPU, isolation="none")
    assert f"remove {tmp_path / LOCK_NAME}" in str(refused.value)         # how to clear a lock left behind
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    run_sweep(suite, tmp_path, CPU, isolation="none")
    assert len(read(tmp_path / "results.jsonl")) == 1 and not (tmp_path / LOCK_NAME).exists()
    with DirLock(tmp_path):
        with pytest.raises(UserError, match="being written"):
            DirLock(tmp_path).acquire()


@pytest.mark.parametrize("recorded", [["python", "-m", "cli", "sweep", "--out", "x"], None])
def test_a_lock_whose_pid_now_runs_another_program_is_stale(tmp_path, recorded):
    from bench.run.lock import lock_owner
    other = subprocess.Popen(["sleep", "30"])                   # the pid is alive, but it is not a prefixbench run
    try:
        lock = {"pid": other.pid, "host": socket.gethostname()}
        if recorded:
            lock["cmdline"] = recorded
        (tmp_path / LOCK_NAME).write_text(json.dumps(lock))
        assert lock_owner(tmp_path) is None
        with DirLock(tmp_path):
            assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        other.kill()
        other.wait()


def test_two_concurrent_sweeps_leave_one_writer_and_no_duplicates(tmp_path):
    args = [sys.executable, "-m", "cli", "sweep", "--out", str(tmp_path), *TINY_FLAGS, "--variant",
            "prefix_rows_add", "--distribution", "uniform", "--distribution", "no_causal", "--resume"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    if codes == [0, 0]:       # the second started after the first had finished: it found everything recorded
        assert any("skipped 2 configurations" in out[1] for out in outs)
    else:
        assert codes == [0, 2], outs
        loser = outs[[p.returncode for p in procs].index(2)][1]
        errors = [ln for ln in loser.splitlines() if ln.startswith("prefixbench: error:")]
        assert len(errors) == 1 and "being written by pid" in errors[0] and "Traceback" not in loser
    assert len(keys(tmp_path / "results.jsonl")) == len(set(keys(tmp_path / "results.jsonl"))) == 2


# 6 + 11. one line and exit 2


def test_unwritable_out_is_one_line_for_sweep_validate_and_report(full_run):
    one_line_exit_2(cli("sweep", "--out", "/proc/x", *TINY_FLAGS, "--distribution", "uniform"), "/proc/x")
    one_line_exit_2(cli("validate", "--out", "/proc/x", "--device", "cpu", "--random", "0", "--no-probes"),
                    "/proc/x")
    one_line_exit_2(cli("report", str(full_run), "--out", "/proc/x"), "/proc/x")


def test_report_out_an_existing_file_is_one_line(full_run, tmp_path):
    (tmp_path / "report").write_text("")
    one_line_exit_2(cli("report", str(full_run), "--out", str(tmp_path / "report")), "a file of that name exists")


def test_results_file_a_directory_is_one_line(tmp_path):
    (tmp_path / "results.jsonl").mkdir()
    one_line_exit_2(cli("sweep", "--out", str(tmp_path), "--resume", *TINY_FLAGS, "--distribution", "uniform"),
                    "is a directory")
    one_line_exit_2(cli("compare", str(tmp_path), str(tmp_path)), "is a directory")


def test_a_directory_given_for_a_length_file_says_so(tmp_path):
    one_line_exit_2(cli("sweep", "--out", str(tmp_path / "o"), *TINY_FLAGS, "--distribution", f"file:{tmp_path}"),
                    "is a directory")


def test_a_host_memory_error_is_recorded_as_oom():
    from bench.harness.isolation import InProcess, IsolatedWorker
    from tests.isolation_targets import host_oom
    assert InProcess().call(host_oom).status == "oom"
    with IsolatedWorker() as worker:
        assert worker.call(host_oom).status == "oom"


# 7 + 9. bounds before work


@pytest.mark.parametrize("args, message", [
    (["--tokens", "1000000000000"], "--tokens 1000000000000: more than"),
    (["--time-cap", "-1"], "--time-cap -1"),
    (["--time-cap", "nan"], "--time-cap nan"),
    (["--warmup", "-1"], "--warmup -1"),
    (["--phase-reps", "-1"], "--phase-reps -1"),
    (["--heads", "-2"], "--heads -2"),
    (["--min-reps", "9", "--max-reps", "3"], "min_reps (9) <= max_reps (3)"),
    (["--call-timeout", "0"], "--call-timeout 0"),
    (["--columns", "a"], "--columns 'a'"),
])
def test_numeric_flags_are_range_checked_at_once(tmp_path, args, message):
    start = time.monotonic()
    proc = cli("sweep", "--out", str(tmp_path), *TINY_FLAGS, "--distribution", "uniform", *args)
    one_line_exit_2(proc, message)
    assert time.monotonic() - start < 60


def test_buffers_are_checked_against_memory_before_work():
    from bench.spec.grid import Config
    from bench.run.sweep import check_memory
    big = Config("uniform", 2 ** 20, 64, 128, "bfloat16")
    with pytest.raises(UserError, match=r"need about 256\.0 GiB .* more than the available host memory"):
        check_memory([big], {"free": 8 * 2 ** 30, "what": "available host memory"})
    check_memory([Config("uniform", 128, 1, 16, "float32")], {"free": 8 * 2 ** 30})


# 8. user files: integers only, never cut, keyed by content


def _lengths(tmp_path: Path, text: str, name: str = "lens.jsonl") -> str:
    (tmp_path / name).write_text(text)
    return f"file:{tmp_path / name}"


@pytest.mark.parametrize("row, message", [
    ('{"prefix_len": 10.5, "causal_len": 3}', "10.5 is not an integer length"),
    ('{"prefix_len": 10, "causal_len": true}', "True is not an integer length"),
    ('{"prefix_len": 1e400, "causal_len": 3}', "inf is not an integer length"),
    ('{"prefix_len": 10, "causal_len": NaN}', "nan is not an integer length"),
])
def test_length_files_accept_only_integers(tmp_path, row, message):
    from bench.spec.distributions import get_distribution
    with pytest.raises(UserError, match=message):
        get_distribution(_lengths(tmp_path, row + "\n"))
    one_line_exit_2(cli("sweep", "--out", str(tmp_path / "o"), *TINY_FLAGS, "--distribution",
                        _lengths(tmp_path, row + "\n")), "not an integer length")


def test_a_sequence_longer_than_the_context_is_refused(tmp_path):
    spec = _lengths(tmp_path, '{"prefix_len": 60, "causal_len": 10}\n')
    one_line_exit_2(cli("sweep", "--out", str(tmp_path / "o"), *TINY_FLAGS, "--distribution", spec),
                    "a sequence of 70 tokens is longer than --context 64")


def test_config_id_follows_the_file_contents_not_its_path(tmp_path, monkeypatch):
    from bench.spec.grid import Config
    from bench.harness.workloads import packed_batch
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("prefix_len,causal_len\n20,4\n9,30\n")
    a, b = Config("file:x.csv", 128, 1, 16, "float32", context=64), Config("file:./x.csv", 128, 1, 16, "float32", context=64)
    assert a.config_id == b.config_id and a.config_id.startswith("file@")
    assert packed_batch(a) == packed_batch(b)
    before = a.config_id
    (tmp_path / "x.csv").write_text("prefix_len,causal_len\n20,4\n9,31\n")
    assert a.config_id != before                   # an edited file is another workload


# issue 15 part 6: the user's own batches


@pytest.mark.parametrize("header", ["prefix_len,causal_len", "prefix,causal", "prompt_len,response_len"])
def test_length_headers_are_recognised(tmp_path, header):
    from bench.spec.distributions import read_length_file
    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbf" + f"{header}\n7,3\n".encode())      # with a UTF-8 BOM
    assert read_length_file(tmp_path / "l.csv") == [(7, 3)]


def test_columns_flag_names_other_columns(tmp_path):
    from bench.spec.distributions import get_distribution
    (tmp_path / "l.csv").write_text("ctx,ans,other\n7,3,x\n")
    with pytest.raises(UserError, match="no length columns among ctx, ans, other"):
        get_distribution(f"file:{tmp_path / 'l.csv'}")
    assert get_distribution(f"file:{tmp_path / 'l.csv'}?columns=ctx,ans").draw(__import__("random").Random(0), 64) == (7, 3)
    proc = cli("sweep", "--out", str(tmp_path / "o"), *TINY_FLAGS, "--variant", "prefix_rows_add", "--distribution",
               f"file:{tmp_path / 'l.csv'}", "--columns", "ctx,ans")
    assert proc.returncode == 0, proc.stderr
    rec = read(tmp_path / "o" / "results.jsonl")[0]
    assert rec["status"] == "ok" and rec["batch"]["max_prefix"] == 7 and rec["batch"]["max_causal"] == 3


def test_batches_are_replayed_exactly_and_in_order(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"prefix_lens": [30, 20], "causal_lens": [0, 5]}\n{"prefix_lens": [4], "causal_lens": [60]}\n')
    from dataclasses import replace
    suite = replace(tiny_suite(distributions=[f"batches:{path}"], variants=["prefix_rows_add"]), tokens=())
    configs = suite.configs()
    assert [(c.distribution, c.tokens) for c in configs] == [(f"batches:{path}#1", 55), (f"batches:{path}#2", 64)]
    assert configs[0].config_id.startswith("batches@") and configs[0].config_id.split("/")[0].endswith("#1")
    run_sweep(suite, tmp_path / "o", CPU, isolation="none")
    recs = read(tmp_path / "o" / "results.jsonl")
    assert [(r["batch"]["prefix_tokens"], r["batch"]["causal_tokens"], r["batch"]["num_seqs"]) for r in recs] == \
        [(50, 5, 2), (4, 60, 1)]
    with pytest.raises(UserError, match="more than --tokens 60"):
        from bench.harness.registry import check_suite
        check_suite(suite.with_overrides(tokens=[60]))
    proc = cli("sweep", "--out", str(tmp_path / "c"), *[f for f in TINY_FLAGS if f not in ("--tokens", "128")],
               "--variant", "prefix_rows_add", "--distribution", f"batches:{path}", "--dry-run")
    assert proc.returncode == 0 and "batches@" in proc.stdout and "/t55/" in proc.stdout, proc.stderr


def test_seed_pr_suite_holds_the_guard_pr_batch():
    suite = load_suite("seed_pr")
    from bench.harness.registry import check_suite
    from bench.harness.workloads import packed_batch
    check_suite(suite)
    (config,) = {c.distribution: c for c in suite.configs()}.values()
    batch = packed_batch(config)
    assert batch.prefix_lens == (4096, 4096, 4089, 4080) and batch.causal_lens == (0, 0, 7, 16)
    assert (config.heads, config.head_dim, config.dtype, config.tokens) == (20, 128, "bfloat16", 16384)


# 10. a hung call is timed out; the worker is replaced


def test_a_hung_call_times_out_and_the_worker_is_respawned():
    from bench.harness.isolation import IsolatedWorker
    from tests.isolation_targets import add, hang
    with IsolatedWorker(call_timeout_s=1.0) as worker:
        start = time.monotonic()
        out = worker.call(hang, seconds=60)
        assert out.status == "timeout" and "call timeout (1 s)" in out.error
        assert time.monotonic() - start < 20
        assert worker.call(add, a=2, b=3).value == 5


# 12. min_reps is a floor; a wide interval is marked


def test_the_time_cap_cannot_cut_min_reps():
    from bench.results.stats import StoppingRule
    rule = StoppingRule(min_reps=5, max_reps=50, target_rel_ci=0.01, time_cap_s=1.0)
    wide = [[1.0, 3.0, 2.0]]
    assert rule.verdict(wide, elapsed_s=100.0) is None
    assert rule.verdict([[1.0, 3.0, 2.0, 5.0, 0.5]], elapsed_s=100.0) == "time_cap"


def test_a_wide_interval_is_recorded_as_not_converged(tmp_path):
    suite = tiny_suite(distributions=["uniform"], variants=["prefix_rows_add"], target_rel_ci=1e-9, min_reps=3,
                       max_reps=3)
    run_sweep(suite, tmp_path, CPU, isolation="none")
    (rec,) = read(tmp_path / "results.jsonl")
    assert rec["converged"] is False and rec["stop_reason"] == "max_reps" and rec["repetitions"] == 3


# the README's main job can be run twice


def test_the_same_sweep_run_twice_continues_and_another_grid_gets_a_fresh_directory(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--out", str(out), *TINY_FLAGS, "--variant", "prefix_rows_add", "--distribution", "uniform",
            "--isolation", "none"]
    assert cli_in_process(*args)[0] == 0
    first = (out / "results.jsonl").read_text()
    code, _, err = cli_in_process(*args)
    assert code == 0, err
    assert f"{out} already holds a run of this grid: continuing it" in err and "nothing left to measure" in err
    assert (out / "results.jsonl").read_text() == first                  # nothing measured twice
    code, _, err = cli_in_process(*[a if a != "128" else "256" for a in args])
    assert code == 0, err
    (fresh,) = [p for p in tmp_path.iterdir() if p.name.startswith("sweep-")]
    assert f"{out} holds another run (--tokens 128 -> 256); writing this one to {fresh}" in err
    assert len(read(fresh / "results.jsonl")) == 1 and (out / "results.jsonl").read_text() == first
