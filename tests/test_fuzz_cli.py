"""Fuzz the command line as a careless user and a hostile machine would: garbage flag values, broken and huge
length / batches files, an interrupt in the middle of a record's write, and SIGINT / SIGTERM / SIGKILL at
random points of a real sweep and validate. What must hold every time: no traceback on stderr, an exit code
in the documented set, and after --resume every (configuration, implementation) recorded exactly once.

The cases are drawn from a seeded generator (PREFIXBENCH_FUZZ_SEED, default 0); a failure names its seed.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run import interrupts
from tests.cli_run import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("PREFIXBENCH_FUZZ_SEED", "0"))
DOCUMENTED_EXITS = {0, 1, 2, 3, 130, 143}
TINY = ["--backend", "reference", "--device", "cpu", "--variant", "prefix_rows_add", "--variant", "zeros_always",
        "--heads", "1", "--head-dim", "16", "--dtype", "float32", "--context", "64", "--min-reps", "3",
        "--max-reps", "3", "--phase-reps", "1", "--warmup", "0", "--no-progress"]
DISTRIBUTIONS = ["sft_long_prompt", "no_causal", "mixed_zero_causal"]
GRID = [*TINY, "--tokens", "128", *[a for d in DISTRIBUTIONS for a in ("--distribution", d)]]


def no_trace(code: int, err: str, what: object) -> None:
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, (SEED, what, err)
    assert code in DOCUMENTED_EXITS, (SEED, what, code, err)
    if code == 2:
        errors = [ln for ln in err.strip().splitlines() if ln.startswith("prefixbench: error:")]
        assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], (SEED, what, err)


def keys(path: Path) -> list[tuple[str, str]]:
    return [(r["config_id"], r["variant"]) for r in map(json.loads, path.read_text().splitlines())]


# ---- garbage flag values ------------------------------------------------------------------------------

VALUES = ["", " ", "-", "--", "0", "-1", "-0", "+3", "1e3", "1e12", "1e400", "-1e400", "nan", "inf", "-inf", "0x10",
          "1_000", "3.0", "2.5", "１２", "١٢", "9" * 400, "abc", "None", "true", "[]", "{}", "'", '"', "\\", "%s",
          "$(echo x)", "é", "\t7", "7 ", "1,2", "file:", "batches:", "frac:", "frac:0.9-0.1", "frac:a-b", "..", "/"]
FLAGS = {"sweep": ["--tokens", "--heads", "--head-dim", "--seed", "--context", "--warmup", "--min-reps", "--max-reps",
                   "--time-cap", "--target-rel-ci", "--phase-reps", "--call-timeout", "--dtype", "--variant", "--peer",
                   "--backend", "--device", "--timing", "--distribution", "--columns", "--suite", "--isolation"],
         "validate": ["--heads", "--head-dim", "--random", "--seed", "--dtype", "--variant", "--spare-workers",
                      "--backend", "--device"],
         "compare": ["--threshold", "--metric"]}


def test_garbage_flag_values_are_one_line_never_a_traceback(tmp_path):
    rng = random.Random(SEED)
    for _ in range(40):
        command = rng.choice(list(FLAGS))
        flag, value = rng.choice(FLAGS[command]), rng.choice(VALUES)
        args = {"sweep": ["sweep", "--dry-run", "--out", str(tmp_path / "s")],
                "validate": ["validate", "--out", str(tmp_path / "v"), "--device", "cpu", "--random", "0",
                             "--no-probes", "--isolation", "none", "--variant", "prefix_rows_add"],
                "compare": ["compare", str(tmp_path / "a"), str(tmp_path / "b")]}[command] + [flag, value]
        if command == "validate" and value.strip() and value.lstrip("+-").isdigit() and int(value) < 10**6:
            continue                                   # a valid number would run a validation: not this test's job
        code, _, err = cli_in_process(*args)
        no_trace(code, err, args)


# ---- broken and huge input files ---------------------------------------------------------------------

def _length_files(rng: random.Random) -> list[tuple[str, str | bytes]]:
    rows = "\n".join(f"{rng.randint(0, 40)},{rng.randint(0, 20)}" for _ in range(20_000))
    deep = "[" * 50_000 + "]" * 50_000
    return [
        ("empty.csv", ""), ("header.csv", "prefix_len,causal_len\n"), ("bom.csv", b"\xef\xbb\xbfprefix,causal\n3,4\n"),
        ("crlf.csv", "prefix_len,causal_len\r\n3,4\r\n"), ("neg.csv", "prefix_len,causal_len\n-3,4\n"),
        ("big.csv", f"prefix_len,causal_len\n{10**30},1\n"), ("float.csv", "prefix_len,causal_len\n3.5,1\n"),
        ("zero.csv", "prefix_len,causal_len\n0,0\n"), ("text.csv", "prefix_len,causal_len\nx,y\n"),
        ("short.csv", "prefix_len,causal_len\n3\n"), ("binary.csv", bytes(rng.randrange(256) for _ in range(4096))),
        ("latin1.csv", "prefix_len,causal_len\n3,4\n\xe9,1\n".encode("latin-1")),
        ("rows.csv", "prefix_len,causal_len\n" + rows + "\n"), ("deep.jsonl", deep + "\n"),
        ("obj.jsonl", '{"prefix_len": {"a": 1}, "causal_len": 2}\n'), ("list.jsonl", "[1, 2]\n"),
        ("nan.jsonl", '{"prefix_len": NaN, "causal_len": 2}\n'), ("cut.jsonl", '{"prefix_len": 3, "causal'),
        ("long.csv", "prefix_len,causal_len\n" + "9" * 100_000 + ",1\n"),
    ]


def _batches_files(rng: random.Random) -> list[tuple[str, str | bytes]]:
    ok = "\n".join(json.dumps({"prefix_lens": [rng.randint(1, 30)], "causal_lens": [rng.randint(0, 30)]})
                   for _ in range(300))
    return [
        ("b_empty.jsonl", ""), ("b_ok.jsonl", ok + "\n"), ("b_mismatch.jsonl", '{"prefix_lens": [1, 2], "causal_lens": [1]}\n'),
        ("b_missing.jsonl", '{"prefix_lens": [1]}\n'), ("b_str.jsonl", '{"prefix_lens": "12", "causal_lens": [1]}\n'),
        ("b_neg.jsonl", '{"prefix_lens": [-1], "causal_lens": [1]}\n'), ("b_zero.jsonl", '{"prefix_lens": [0], "causal_lens": [0]}\n'),
        ("b_huge.jsonl", json.dumps({"prefix_lens": [2**62], "causal_lens": [1]}) + "\n"),
        ("b_float.jsonl", '{"prefix_lens": [1.5], "causal_lens": [1]}\n'), ("b_bool.jsonl", '{"prefix_lens": [true], "causal_lens": [1]}\n'),
        ("b_deep.jsonl", '{"prefix_lens": ' + "[" * 20_000 + "]" * 20_000 + ', "causal_lens": [1]}\n'),
        ("b_many.jsonl", json.dumps({"prefix_lens": [1] * 50_000, "causal_lens": [0] * 50_000}) + "\n"),
        ("b_binary.jsonl", bytes(rng.randrange(256) for _ in range(2048))),
    ]


def test_broken_and_huge_length_and_batches_files_are_one_line_never_a_traceback(tmp_path):
    rng = random.Random(SEED)
    cases = [("file", n, c) for n, c in _length_files(rng)] + [("batches", n, c) for n, c in _batches_files(rng)]
    for kind, name, content in cases:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        extra = ["--tokens", "256"] if kind == "file" else []
        args = ["sweep", "--dry-run", *TINY, *extra, "--distribution", f"{kind}:{path}"]
        start = time.monotonic()
        code, out, err = cli_in_process(*args)
        no_trace(code, err, name)
        assert code in (0, 2), (name, err)
        assert time.monotonic() - start < 30, name


# ---- an interrupt in the middle of a record's write ----------------------------------------------------

def test_an_interrupt_inside_a_write_leaves_whole_records_and_resume_completes(tmp_path, monkeypatch):
    import bench.results.io as io
    rng = random.Random(SEED)
    cut_at_write, calls = rng.randint(1, 2 * len(DISTRIBUTIONS) - 1), {"n": 0}
    real_write = os.write

    def write_then_interrupt(fd: int, data) -> int:
        calls["n"] += 1
        if calls["n"] == cut_at_write:
            real_write(fd, bytes(data[: rng.randint(1, len(data) - 1)]))     # part of the line is on disk
            raise interrupts.Interrupted(rng.choice([signal.SIGINT, signal.SIGTERM]))
        return real_write(fd, data)

    class OsWithACutWrite:                              # the record writer's `os`, and only its
        def __getattr__(self, name: str):
            return write_then_interrupt if name == "write" else getattr(os, name)

    args = ["sweep", "--out", str(tmp_path), *GRID, "--isolation", "none"]
    monkeypatch.setattr(io, "os", OsWithACutWrite())
    code, _, err = cli_in_process(*args)
    monkeypatch.undo()
    no_trace(code, err, cut_at_write)
    assert code in (130, 143)
    results = tmp_path / "results.jsonl"
    kept = keys(results) if results.exists() else []                     # every line parses: none is half
    assert len(kept) == cut_at_write - 1, (SEED, cut_at_write, kept)
    assert (f"{len(kept)} records kept" if kept else "before the first record") in err.strip().splitlines()[-1]
    code, _, err = cli_in_process("sweep", "--out", str(tmp_path), "--resume", "--isolation", "none")
    assert code == 0, err
    assert len(keys(results)) == len(set(keys(results))) == 2 * len(DISTRIBUTIONS)


# ---- SIGINT / SIGTERM / SIGKILL at random points of a real run -----------------------------------------

def _second_writer(out: Path, proc: subprocess.Popen) -> None:
    """While the run holds its directory, a second sweep and a validate on it get one line, exit 2."""
    deadline = time.monotonic() + 60
    while not (out / ".prefixbench.lock").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    for args in (["sweep", "--out", str(out), "--resume", "--isolation", "none"],
                 ["validate", "--out", str(out), "--device", "cpu", "--isolation", "none", "--no-probes", "--random", "0",
                  "--variant", "prefix_rows_add", "--head-dim", "16"]):
        code, _, err = cli_in_process(*args)
        no_trace(code, err, args)
        if proc.poll() is None and code == 2 and "being written" in err:
            assert "remove" in err.strip().splitlines()[-1], err


def _run_and_signal(args: list[str], sig: int, delay: float, meanwhile=None) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    if meanwhile is not None:
        meanwhile(proc)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, sig)                     # the whole group: parent and workers, as Ctrl-C does
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])       # SIGTERM: tests/test_interrupts.py
def test_a_signal_at_a_random_point_of_a_sweep_loses_and_duplicates_nothing(tmp_path, sig):
    delay = random.Random(SEED * 10 + sig).uniform(0.2, 10.0)
    code, err = _run_and_signal(["sweep", "--out", str(tmp_path), *GRID], sig, delay,
                                meanwhile=(lambda proc: _second_writer(tmp_path, proc)) if sig == signal.SIGINT else None)
    if sig == signal.SIGKILL:
        assert code in (0, -9) and "Traceback" not in err, (SEED, delay, err)
    else:
        no_trace(code, err, delay)
        assert code in (0, 128 + sig), (SEED, delay, err)
        if code:
            assert [ln for ln in err.splitlines() if "interrupted" in ln] == [err.strip().splitlines()[-1]], err
    results = tmp_path / "results.jsonl"
    if not (tmp_path / "run.json").exists():
        return                                       # stopped before the grid was saved: nothing to resume
    code, _, err = cli_in_process("sweep", "--out", str(tmp_path), "--resume", "--isolation", "none")
    assert code == 0, (SEED, delay, err)             # a SIGKILL's lock is stale: taken over
    assert len(keys(results)) == len(set(keys(results))) == 2 * len(DISTRIBUTIONS), (SEED, delay)


def test_a_signal_at_a_random_point_of_validate_is_one_line_and_resume_completes(tmp_path):
    rng = random.Random(SEED)
    sig, delay = rng.choice([signal.SIGINT, signal.SIGTERM]), rng.uniform(0.2, 10.0)
    args = ["validate", "--out", str(tmp_path), "--backend", "reference", "--device", "cpu", "--random", "0",
            "--no-probes", "--head-dim", "16", "--variant", "prefix_rows_add", "--variant", "unguarded",
            "--spare-workers", "1"]
    code, err = _run_and_signal(args, sig, delay)
    no_trace(code, err, (sig, delay))
    code, _, err = cli_in_process("validate", "--out", str(tmp_path), "--resume", "--isolation", "none")
    no_trace(code, err, "resume")
    rows = [(r["variant"], r["pattern"]) for r in map(json.loads, (tmp_path / "validation.jsonl").read_text()
                                                          .splitlines())]
    assert len(rows) == len(set(rows)) and {v for v, _ in rows} == {"prefix_rows_add", "unguarded"}
